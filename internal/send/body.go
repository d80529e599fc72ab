package send

import (
	"context"
	"io"

	"github.com/ferryhq/ferry/internal/watchdog"
)

// Cap cuts p to what the bandwidth budget hands out at once, so that a
// read of a request body never asks for more than it may send.
func (e *Env) Cap(p []byte) []byte {
	if e.Limiter != nil {
		return p[:min(len(p), e.Limiter.Burst())]
	}
	return p
}

// Took accounts for n bytes of a request body the transport took: it waits
// for the bandwidth budget (the watchdog held meanwhile, since waiting is
// no stall), then feeds the watchdog and the task's progress. wd may be
// nil outside a request.
func (e *Env) Took(ctx context.Context, wd *watchdog.Watchdog, n int) error {
	if n <= 0 {
		return nil
	}
	if e.Limiter != nil {
		if wd != nil {
			wd.Hold()
		}
		err := e.Limiter.WaitN(ctx, n)
		if wd != nil {
			wd.Release()
		}
		if err != nil {
			return err
		}
	}
	if wd != nil {
		wd.Add(n)
	}
	e.Meter.Add(int64(n))
	return nil
}

// Metered returns r as a request body that the task's budget, watchdog
// and progress see (Cap and Took on every read).
func (e *Env) Metered(ctx context.Context, wd *watchdog.Watchdog, r io.Reader) io.Reader {
	return &metered{r: r, e: e, wd: wd, ctx: ctx}
}

type metered struct {
	r   io.Reader
	e   *Env
	wd  *watchdog.Watchdog
	ctx context.Context
}

func (m *metered) Read(p []byte) (int, error) {
	n, err := m.r.Read(m.e.Cap(p))
	if werr := m.e.Took(m.ctx, m.wd, n); werr != nil {
		return 0, werr
	}
	return n, err
}
