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
	if err := e.pace(ctx, wd, n); err != nil || n <= 0 {
		return err
	}
	e.Meter.Add(int64(n))
	return nil
}

// pace is Took but for the task's progress.
func (e *Env) pace(ctx context.Context, wd *watchdog.Watchdog, n int) error {
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
	return nil
}

// Metered returns r as a request body that the task's budget, watchdog
// and progress see (Cap and Took on every read).
func (e *Env) Metered(ctx context.Context, wd *watchdog.Watchdog, r io.Reader) io.Reader {
	return &metered{r: r, e: e, wd: wd, ctx: ctx, progress: true}
}

// Paced returns r as a request body that the task's budget and watchdog
// see, but not its progress: for a task whose progress is its response.
func (e *Env) Paced(ctx context.Context, wd *watchdog.Watchdog, r io.Reader) io.Reader {
	return &metered{r: r, e: e, wd: wd, ctx: ctx}
}

type metered struct {
	r        io.Reader
	e        *Env
	wd       *watchdog.Watchdog
	ctx      context.Context
	progress bool
}

func (m *metered) Read(p []byte) (int, error) {
	n, err := m.r.Read(m.e.Cap(p))
	took := m.e.pace
	if m.progress {
		took = m.e.Took
	}
	if werr := took(m.ctx, m.wd, n); werr != nil {
		return 0, werr
	}
	return n, err
}
