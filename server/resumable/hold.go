package resumable

import (
	"context"
	"io"
	"net/http"

	"github.com/ferryhq/ferry/server/store"
)

// A Hold is one request's exclusive hold on an upload, for a handler that
// speaks a protocol of its own over a Handler's uploads, as server/stream
// does for live streams. Under a Hold an upload changes as under the
// Handler's own requests: one lock, one takeover rule, one count of the
// storage, one store. A Hold is used by one goroutine at a time; Release
// ends it.
//
// Its methods' errors match, under [errors.Is], the *Error a request of
// the Handler would have been answered with: ErrStorageFull when the
// storage is full, ErrInternal for a failure of the store.
type Hold struct {
	h    *Handler
	c    *claim
	up   store.Upload
	info store.Info
}

// Create stores a new upload of info for the request r and holds it for r.
// An empty info.ID gets a new one. The upload's record is counted against
// the storage, and its length, when known, must fit.
func (h *Handler) Create(w http.ResponseWriter, r *http.Request, info store.Info) (*Hold, error) {
	if info.ID == "" {
		info.ID = store.NewID()
	}
	up, info, err := h.newUpload(r.Context(), info)
	if err != nil {
		return nil, holdError(err)
	}
	c, e := h.claim(w, r, info.ID, false)
	if e != nil {
		// Nobody can reach an upload its creator could not hold.
		if h.term != nil {
			h.terminate(context.WithoutCancel(r.Context()), up)
		}
		return nil, e
	}
	return &Hold{h: h, c: c, up: up, info: info}, nil
}

// newUpload creates the upload info describes, counting its record
// against the storage, and returns it with the store's description.
func (h *Handler) newUpload(ctx context.Context, info store.Info) (store.Upload, store.Info, error) {
	record := store.Footprint(info)
	if !info.SizeIsDeferred {
		if e := h.checkStorage(record + info.Size); e != nil {
			return nil, info, e
		}
	}
	if e := h.takeStorage(record); e != nil {
		return nil, info, e
	}
	up, err := h.store.NewUpload(ctx, info)
	if err != nil {
		h.storage.Release(record)
		return nil, info, err
	}
	if info, err = up.GetInfo(ctx); err != nil { // with the store's times
		return nil, info, err
	}
	return up, info, nil
}

// Hold holds upload id for the request r. A request holding it that is
// reading content is taken over when its content has stalled, as the
// Handler's own requests are; with takeOver, a holder in this process is
// taken over at once, whatever its progress: for clients that never send
// two requests for one upload at once, so that a second one means the
// first is gone. A holder that reads no content is waited for, up to
// Config.LockTimeout (then ErrLocked).
func (h *Handler) Hold(w http.ResponseWriter, r *http.Request, id string, takeOver bool) (*Hold, error) {
	c, e := h.claim(w, r, id, takeOver)
	if e != nil {
		return nil, e
	}
	o, err := h.held(c)
	if err != nil {
		c.release()
		return nil, holdError(err)
	}
	return o, nil
}

// held reads the upload claim c holds.
func (h *Handler) held(c *claim) (*Hold, error) {
	up, err := h.store.GetUpload(c.ctx, c.id)
	if err != nil {
		return nil, err
	}
	info, err := up.GetInfo(c.ctx)
	if err != nil {
		return nil, err
	}
	return &Hold{h: h, c: c, up: up, info: info}, nil
}

// Info is the upload as it stands.
func (o *Hold) Info() store.Info { return o.info }

// Upload is the upload in the store, to read it.
func (o *Hold) Upload() store.Upload { return o.up }

// Appending says how [Hold.Append] stores content and whom it tells.
type Appending struct {
	// Pieces bounds what is written between the points where it is made
	// durable. The zero value makes the whole content one piece.
	Pieces store.Pieces
	// Read, if set, is handed every byte the store is handed, with the
	// upload's offset of the first: the content as it is stored, to
	// process it as it arrives. It must not keep p.
	Read func(p []byte, offset int64)
	// Durable, if set, is told every offset that became durable before
	// the end of the content (the last is Append's result).
	Durable func(offset int64)
}

// Append stores content at the upload's offset until content ends (nil)
// or fails: bounded by the upload's length or Config.MaxSize
// (ErrSizeExceeded, ErrMaxSizeExceeded), as far as the storage takes
// (ErrStorageFull: what fit is kept), and watched as the Handler watches
// its own requests' content (ErrInterrupted once taken over). It returns
// the upload as it stands after, also when it fails: its offset is
// durable.
func (o *Hold) Append(content io.Reader, a Appending) (store.Info, error) {
	off := o.info.Offset
	info, err := o.h.appendFrom(o.c, o.up, o.info, content, func(src io.Reader) (int64, error) {
		if a.Read != nil {
			src = &tellReader{r: src, tell: a.Read, off: off}
		}
		return store.Append(o.c.ctx, o.up, off, src, a.Pieces, a.Durable)
	})
	o.info = info
	return info, holdError(err)
}

// tellReader hands what it reads to tell.
type tellReader struct {
	r    io.Reader
	tell func(p []byte, offset int64)
	off  int64
}

func (t *tellReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.tell(p[:n], t.off)
		t.off += int64(n)
	}
	return n, err
}

// Complete completes the upload: at its offset when its length was
// deferred, and finished in the store. Done once the client has gone too.
func (o *Hold) Complete() (store.Info, error) {
	ctx := context.WithoutCancel(o.c.ctx)
	info := o.info
	if !info.Finished() {
		var err error
		if info, err = o.h.completeNow(ctx, o.up, info); err != nil {
			return o.info, holdError(err)
		}
	}
	if err := o.h.finish(ctx, o.up, info); err != nil {
		return info, holdError(err)
	}
	o.info = info
	return info, nil
}

// Terminate removes the upload and gives back the storage it held.
// Done once the client has gone too.
func (o *Hold) Terminate() error {
	if o.h.term == nil {
		return ErrNotImplemented.with("termination")
	}
	if err := o.h.terminate(context.WithoutCancel(o.c.ctx), o.up); err != nil {
		return holdError(err)
	}
	o.h.forget(o.c.id)
	o.h.log.Info("upload terminated", "id", o.c.id)
	return nil
}

// Release ends the hold. It is idempotent.
func (o *Hold) Release() { o.c.release() }

// Terminate removes upload id and gives back the storage it held, as a
// DELETE does: a request of this process appending to it is taken over at
// once, any other is waited for up to Config.LockTimeout.
func (h *Handler) Terminate(ctx context.Context, id string) error {
	c, e := h.claimFor(ctx, nil, id, true)
	if e != nil {
		return e
	}
	defer c.release()
	o, err := h.held(c)
	if err != nil {
		return holdError(err)
	}
	return o.Terminate()
}

// MismatchedOffset is the error of an append at provided when the upload
// is at expected: the draft's mismatching-upload-offset problem, with both.
func MismatchedOffset(expected, provided int64) *Error {
	return ErrMismatchOffset.
		with("Upload-Offset %d, the upload is at %d", provided, expected).
		withExtra("expected-offset", expected).
		withExtra("provided-offset", provided)
}

// WriteError answers r with the problem err maps to, as the Handler
// answers its own requests: an *Error as it is, the errors of a Hold and
// of stores as the *Error they match.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e, _ := toError(err)
	writeProblem(w, r, e)
}

// holdError is err as a Hold returns it: matching, under errors.Is, the
// *Error a request would have been answered with.
func holdError(err error) error {
	if err == nil {
		return nil
	}
	e, _ := toError(err)
	if e == err {
		return err
	}
	return &heldError{e: e, err: err}
}

// heldError is a cause with the *Error it maps to.
type heldError struct {
	e   *Error
	err error
}

func (he *heldError) Error() string   { return he.err.Error() }
func (he *heldError) Unwrap() []error { return []error{he.e, he.err} }
