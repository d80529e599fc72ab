package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// attempt runs one request under the job's limits (see watchdog.Attempt).
func (r *run) attempt(ctx context.Context, f func(actx context.Context, wd *watchdog.Watchdog) error) error {
	return watchdog.Attempt(ctx, r.host, watchdog.Limits{
		Slots: r.j.Slots, IdleTimeout: r.j.IdleTimeout, MinSpeed: r.j.MinSpeed, MinSpeedTime: r.j.MinSpeedTime,
	}, f)
}

// exchange sends one request and returns its response with the body read
// (at most 64 KiB: these are protocol answers, not data). body may be nil.
func (r *run) exchange(ctx context.Context, wd *watchdog.Watchdog, method, target string, hdr http.Header, body *section) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = &meteredReader{r: body.reader(), run: r, wd: wd, ctx: ctx}
	}
	req, err := http.NewRequestWithContext(transfer.WithRedirectHook(ctx, transfer.ReportRedirects(r.j.CheckRedirect, r.j.Emit)), method, target, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.ContentLength = body.n
		req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(&meteredReader{r: body.reader(), run: r, wd: wd, ctx: ctx}), nil
		}
		if body.n == 0 {
			req.Body = http.NoBody
		}
	}
	transfer.AddHeader(req, r.j.Header, r.j.URL)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "ferry")
	}
	rec := transfer.NewRecorder(req)
	rec.OnActivity = wd.Kick
	req = req.WithContext(rec.WithContext(req.Context()))
	resp, err := r.j.Client.Do(req)
	var sent int64
	if body != nil {
		sent = body.n
	}
	if err != nil {
		m := rec.Finish(0, err)
		m.RequestBodyBytes = sent
		r.j.Emit(transfer.MetricsEvent{Transaction: m})
		if ctx.Err() != nil {
			return nil, nil, context.Cause(ctx)
		}
		if refusal, ok := transfer.RedirectRefusal(err); ok {
			return nil, nil, refusal
		}
		return nil, nil, &transfer.Transient{Err: err}
	}
	defer resp.Body.Close()
	rec.Response(resp)
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	m := rec.Finish(int64(len(b)), rerr)
	m.RequestBodyBytes = sent
	r.j.Emit(transfer.MetricsEvent{Transaction: m})
	r.proto.Store(&resp.Proto)
	if rerr != nil {
		return nil, nil, &transfer.Transient{Err: rerr}
	}
	return resp, b, nil
}

// resolve makes a Location header absolute against the request's URL,
// refusing one that ferry does not follow (transfer.CheckTarget).
func resolve(base *url.URL, loc string) (string, error) {
	u, err := url.Parse(loc)
	if err != nil || loc == "" {
		return "", errors.New("server answered without a usable Location")
	}
	abs := base.ResolveReference(u)
	if err := transfer.CheckTarget(abs, base); err != nil {
		return "", err
	}
	return abs.String(), nil
}

// section is bytes [off, off+n) of the file, read afresh for every attempt,
// so memory stays flat whatever the size.
type section struct {
	f   io.ReaderAt
	off int64
	n   int64
}

func (s *section) reader() io.Reader { return io.NewSectionReader(s.f, s.off, s.n) }

// meteredReader counts what the transport takes from a request body: it
// feeds progress and the watchdog, and waits for the bandwidth budget.
type meteredReader struct {
	r   io.Reader
	run *run
	wd  *watchdog.Watchdog
	ctx context.Context
}

func (m *meteredReader) Read(p []byte) (int, error) {
	if l := m.run.j.Limiter; l != nil {
		p = p[:min(len(p), l.Burst())]
	}
	n, err := m.r.Read(p)
	if n > 0 {
		if l := m.run.j.Limiter; l != nil {
			m.wd.Hold()
			werr := l.WaitN(m.ctx, n)
			m.wd.Release()
			if werr != nil {
				return 0, werr
			}
		}
		m.wd.Add(n)
		m.run.j.Meter.Add(int64(n))
	}
	return n, err
}

func keyOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
