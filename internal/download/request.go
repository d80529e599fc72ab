package download

import (
	"context"
	"net/http"

	"github.com/ferryhq/ferry/internal/watchdog"

	"github.com/ferryhq/ferry/internal/transfer"
)

// attempt runs one request under the job's limits (see watchdog.Attempt).
func (r *run) attempt(ctx context.Context, f func(actx context.Context, wd *watchdog.Watchdog) error) error {
	return watchdog.Attempt(ctx, r.host, watchdog.Limits{
		Slots: r.j.Slots, IdleTimeout: r.j.IdleTimeout, MinSpeed: r.j.MinSpeed, MinSpeedTime: r.j.MinSpeedTime,
	}, f)
}

// newRequest builds a request with the job's headers, a redirect hook that
// reports to this task, and an httptrace recorder that also feeds wd.
func (r *run) newRequest(ctx context.Context, method string, wd *watchdog.Watchdog) (*http.Request, *transfer.Recorder, error) {
	ctx = transfer.WithRedirectHook(ctx, transfer.ReportRedirects(r.j.CheckRedirect, r.j.Emit))
	req, err := http.NewRequestWithContext(ctx, method, r.j.URL, nil)
	if err != nil {
		return nil, nil, err
	}
	transfer.AddHeader(req, r.j.Header, r.j.URL)
	// Bytes are stored as served, and a resume must splice identity bytes:
	// never ask for a content coding (RFC 9110 §14.2: ranges are of the
	// encoded form).
	req.Header.Del("Accept-Encoding")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "ferry")
	}
	rec := transfer.NewRecorder(req)
	rec.OnActivity = wd.Kick
	return req.WithContext(rec.WithContext(req.Context())), rec, nil
}

func (r *run) finishTxn(rec *transfer.Recorder, body int64, err error) {
	r.j.Emit(transfer.MetricsEvent{Transaction: rec.Finish(body, err)})
}

// do sends req; a transport failure of these idempotent requests is transient.
func (r *run) do(req *http.Request, rec *transfer.Recorder) (*http.Response, error) {
	resp, err := r.j.Client.Do(req)
	if err != nil {
		r.finishTxn(rec, 0, err)
		if req.Context().Err() != nil {
			return nil, context.Cause(req.Context())
		}
		if refusal, ok := transfer.RedirectRefusal(err); ok {
			return nil, refusal
		}
		return nil, &transfer.Transient{Err: err}
	}
	rec.Response(resp)
	return resp, nil
}
