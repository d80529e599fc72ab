package resumable

import (
	"errors"
	"io"

	"github.com/ferryhq/ferry/server/store"
)

// errStorageFull is the error of bytes the store has no room for under
// Config.MaxStorage, Room or Storage.
var errStorageFull = errors.New("resumable: upload storage is full")

// The handler's storage (a *store.Meter, nil for none) counts what the
// store holds: the [store.Footprint] of every upload, plus the bytes being
// appended. It is measured from the store when the handler starts (or by
// whoever made Config.Storage) and kept current by every change the
// handler makes.

// takeStorage counts n more bytes if they fit, or returns why they do not.
func (h *Handler) takeStorage(n int64) *Error { return storageError(h.storage.Take(n)) }

// checkStorage returns why n more bytes would not fit now, or nil.
func (h *Handler) checkStorage(n int64) *Error { return storageError(h.storage.Check(n)) }

// storageError is the *Error for a refusal of the storage, nil for none.
func storageError(err error) *Error {
	if fe, ok := errors.AsType[*store.FullError](err); ok {
		return ErrStorageFull.with("%s", fe.Reason())
	}
	if err != nil {
		return ErrStorageFull.with("%v", err)
	}
	return nil
}

// storageReader counts each byte read through it against the storage
// before passing it on; once the storage is full it passes on what fits
// and then fails with errStorageFull. taken is what it counted.
type storageReader struct {
	r     io.Reader
	s     *store.Meter
	taken int64
	err   error
}

func (sr *storageReader) Read(p []byte) (int, error) {
	if sr.err != nil {
		return 0, sr.err
	}
	n, err := sr.r.Read(p)
	if got := sr.s.TakeUpTo(int64(n)); got < int64(n) {
		n, err, sr.err = int(got), errStorageFull, errStorageFull
	}
	sr.taken += int64(n)
	return n, err
}
