package ferry

import (
	"context"
	"net/http"

	"github.com/ferryhq/ferry/internal/retry"
	"github.com/ferryhq/ferry/internal/send"
	"golang.org/x/time/rate"
)

// env is how the task t sends its requests: the session's client, limits
// and header with the request's own header after them, and rateLimit
// (bytes/s, 0: none) the task's own bandwidth budget within the
// session's. Every engine gets one; t may be nil while the task is being
// built (its meter and events are set then).
func (s *Session) env(t *Task, url string, header http.Header, rateLimit int64) *send.Env {
	cfg := s.cfg
	e := &send.Env{
		Client:        s.client,
		URL:           url,
		Header:        mergeHeaders(cfg.Header, header),
		Retry:         retry.Policy(cfg.Retry),
		IdleTimeout:   cfg.IdleTimeout,
		MinSpeed:      cfg.MinSpeed,
		MinSpeedTime:  cfg.MinSpeedTime,
		Slots:         s.slots,
		CheckRedirect: cfg.CheckRedirect,
		Proxy:         s.proxy,
	}
	switch {
	case rateLimit > 0 && s.limiter != nil:
		e.Limiter = bothLimits{newLimiter(rateLimit), s.limiter}
	case rateLimit > 0:
		e.Limiter = newLimiter(rateLimit)
	case s.limiter != nil: // a nil *rate.Limiter is not a nil interface
		e.Limiter = s.limiter
	}
	if t != nil {
		e.Meter, e.Emit = t.meter, t.engineEmit
	}
	return e
}

// mergeHeaders is a followed by b, copied; nil when both are empty.
func mergeHeaders(a, b http.Header) http.Header {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	h := make(http.Header, len(a)+len(b))
	for k, v := range a {
		h[k] = append([]string(nil), v...)
	}
	for k, v := range b {
		h[k] = append(h[k], v...)
	}
	return h
}

// newLimiter is a budget of bytesPerSec, handed out in pieces small
// enough to keep the rate smooth.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(bytesPerSec), int(min(bytesPerSec, 256<<10)))
}

// bothLimits is a task's own budget within the session's: bytes wait for
// both.
type bothLimits [2]*rate.Limiter

func (b bothLimits) WaitN(ctx context.Context, n int) error {
	for _, l := range b {
		if err := l.WaitN(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func (b bothLimits) Burst() int { return min(b[0].Burst(), b[1].Burst()) }
