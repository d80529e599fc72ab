package resumable

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryhq/ferry/server/store"
)

// A claim is one request's exclusive hold on an upload: the upload's lock,
// plus what another request needs to take the upload over.
//
// One request at a time may change an upload. A request that finds the
// upload held asks the holder to let go (store.Lock calls the holder's
// requestRelease while it waits, up to Config.LockTimeout):
//
//   - a holder streaming content that arrived within Config.StallTimeout
//     keeps going; the newcomer gets 423 Locked once it has waited long
//     enough. Two clients racing for one upload: exactly one wins.
//   - a holder whose content has stalled is taken over: its context is
//     cancelled with errTakenOver and its read deadline set to now, so a
//     read stuck on a dead connection returns; the store keeps every byte
//     it made durable, and the holder unlocks. This is the draft's
//     recommendation (§ Concurrency) and what tusd calls "lock release
//     requested": a client that lost its connection resumes at once
//     instead of waiting for the server to notice.
//   - a holder not streaming (HEAD, DELETE, a concatenation) finishes
//     quickly and is waited for.
//
// DELETE also takes over streaming holders in this process, whatever their
// progress: cancellation wins over appending.
type claim struct {
	h    *Handler
	id   string
	lock store.Lock
	ctx  context.Context // cancelled when the claim is taken over
	stop context.CancelCauseFunc
	rc   *http.ResponseController

	streaming atomic.Bool
	lastRead  atomic.Int64 // UnixNano of the last content byte read
	mu        sync.Mutex   // serialises takeOver
	released  bool
}

// claim locks upload id for the request r.
func (h *Handler) claim(w http.ResponseWriter, r *http.Request, id string, force bool) (*claim, *Error) {
	return h.claimFor(r.Context(), http.NewResponseController(w), id, force)
}

// claimFor locks upload id for a request with context rctx, whose content
// reads rc interrupts when it is taken over; rc is nil for work that reads
// no content.
func (h *Handler) claimFor(rctx context.Context, rc *http.ResponseController, id string, force bool) (*claim, *Error) {
	ctx, stop := context.WithCancelCause(rctx)
	c := &claim{h: h, id: id, ctx: ctx, stop: stop, rc: rc}
	c.lastRead.Store(time.Now().UnixNano())
	lock, err := h.locker.NewLock(id)
	if err != nil {
		stop(nil)
		return nil, ErrInternal.with("lock %s: %v", id, err)
	}
	if force {
		h.takeOverLocal(id)
	}
	lctx, cancel := context.WithTimeout(rctx, h.lockTimeout)
	err = lock.Lock(lctx, c.requestRelease)
	cancel()
	if err != nil {
		stop(nil)
		if rctx.Err() != nil {
			return nil, ErrBodyRead.with("client went away while waiting for the upload")
		}
		if errors.Is(err, store.ErrLockTimeout) {
			return nil, ErrLocked.with("another request for upload %s is still transferring", id)
		}
		return nil, ErrInternal.with("lock %s: %v", id, err)
	}
	c.lock = lock
	h.active.Store(id, c)
	return c, nil
}

// requestRelease is called by requests waiting for the lock.
func (c *claim) requestRelease() {
	if !c.streaming.Load() || c.h.stallTimeout < 0 {
		return
	}
	if time.Since(time.Unix(0, c.lastRead.Load())) < c.h.stallTimeout {
		return
	}
	c.h.log.Info("upload taken over", "id", c.id, "stalled_for", time.Since(time.Unix(0, c.lastRead.Load())).Round(time.Millisecond))
	c.takeOver()
}

// takeOver cancels the claim's request and unblocks its content reads.
func (c *claim) takeOver() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return
	}
	c.stop(errTakenOver)
	// A Read blocked on a silent connection only returns at a deadline.
	if c.rc != nil {
		_ = c.rc.SetReadDeadline(time.Now())
	}
}

// takeOverLocal takes over a streaming claim on id held in this process.
func (h *Handler) takeOverLocal(id string) {
	if v, ok := h.active.Load(id); ok {
		if c := v.(*claim); c.streaming.Load() {
			c.takeOver()
		}
	}
}

// release unlocks the upload. It is idempotent.
func (c *claim) release() {
	c.mu.Lock()
	if c.released {
		c.mu.Unlock()
		return
	}
	c.released = true
	c.mu.Unlock()
	c.streaming.Store(false)
	c.h.active.CompareAndDelete(c.id, c)
	if err := c.lock.Unlock(); err != nil {
		c.h.log.Warn("unlock", "id", c.id, "err", err)
	}
	c.stop(nil)
}

// body wraps request content so that reads record progress for stall
// detection and fail with the takeover's cause once the claim is taken
// over.
func (c *claim) body(r io.Reader) io.Reader { return &claimReader{c: c, r: r} }

type claimReader struct {
	c *claim
	r io.Reader
}

func (cr *claimReader) Read(p []byte) (int, error) {
	if cr.c.ctx.Err() != nil {
		return 0, context.Cause(cr.c.ctx)
	}
	n, err := cr.r.Read(p)
	if n > 0 {
		cr.c.lastRead.Store(time.Now().UnixNano())
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(cr.c.ctx); errors.Is(cause, errTakenOver) {
			// The read failed because of the takeover (its deadline):
			// report that, not the i/o timeout.
			err = cause
		} else {
			// The content stalled (over HTTP/2 the idle deadline also
			// cancels the request), ended early, or its client went.
			err = bodyError(err)
		}
	}
	return n, err
}
