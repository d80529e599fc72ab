package ferry

import (
	"net/http"

	"github.com/ferryhq/ferry/internal/send"
)

// env is how the task t sends its requests: the session's client, limits
// and header with the request's own header after them. Every engine gets
// one; t may be nil while the task is being built (its meter and events
// are set then).
func (s *Session) env(t *Task, url string, header http.Header) *send.Env {
	cfg := s.cfg
	e := &send.Env{
		Client:        s.client,
		URL:           url,
		Header:        mergeHeaders(cfg.Header, header),
		Retry:         cfg.Retry,
		IdleTimeout:   cfg.IdleTimeout,
		MinSpeed:      cfg.MinSpeed,
		MinSpeedTime:  cfg.MinSpeedTime,
		Slots:         s.slots,
		CheckRedirect: cfg.CheckRedirect,
	}
	if s.limiter != nil { // a nil *rate.Limiter is not a nil interface
		e.Limiter = s.limiter
	}
	if t != nil {
		e.Meter, e.Emit = t.meter, t.emit
	}
	return e
}

// mergeHeaders is a followed by b, copied.
func mergeHeaders(a, b http.Header) http.Header {
	h := make(http.Header, len(a)+len(b))
	for k, v := range a {
		h[k] = append([]string(nil), v...)
	}
	for k, v := range b {
		h[k] = append(h[k], v...)
	}
	return h
}
