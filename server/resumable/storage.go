package resumable

import (
	"errors"
	"io"
	"sync"
)

// errStorageFull is the error of bytes the store has no room for under
// Config.MaxStorage.
var errStorageFull = errors.New("resumable: upload storage is full")

// storage counts what the store holds against Config.MaxStorage: the
// [store.Footprint] of every upload, plus the bytes being appended. It is
// measured from the store when the handler starts and kept current by
// every change the handler makes. A nil *storage is no limit.
type storage struct {
	max  int64
	mu   sync.Mutex
	used int64
}

// take counts n more bytes if they fit, and reports whether they did.
func (s *storage) take(n int64) bool {
	if s == nil || n <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > s.max-s.used {
		return false
	}
	s.used += n
	return true
}

// takeUpTo counts as many of n more bytes as fit and returns how many.
func (s *storage) takeUpTo(n int64) int64 {
	if s == nil || n <= 0 {
		return n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n = max(min(n, s.max-s.used), 0)
	s.used += n
	return n
}

// fits reports whether n more bytes would fit now.
func (s *storage) fits(n int64) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return n <= s.max-s.used
}

// release stops counting n bytes.
func (s *storage) release(n int64) {
	if s == nil || n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = max(s.used-n, 0)
}

// room returns how many more bytes fit.
func (s *storage) room() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max - s.used
}

// full returns the error for n bytes that do not fit.
func (s *storage) full(n int64) *Error {
	return ErrStorageFull.with("%d more bytes do not fit: %d of the limit of %d are free", n, max(s.room(), 0), s.max)
}

// storageReader counts each byte read through it against the storage
// before passing it on; once the storage is full it passes on what fits
// and then fails with errStorageFull. taken is what it counted.
type storageReader struct {
	r     io.Reader
	s     *storage
	taken int64
	err   error
}

func (sr *storageReader) Read(p []byte) (int, error) {
	if sr.err != nil {
		return 0, sr.err
	}
	n, err := sr.r.Read(p)
	if got := sr.s.takeUpTo(int64(n)); got < int64(n) {
		n, err, sr.err = int(got), errStorageFull, errStorageFull
	}
	sr.taken += int64(n)
	return n, err
}
