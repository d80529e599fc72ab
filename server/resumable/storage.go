package resumable

import (
	"errors"
	"io"
	"math"
	"sync"
	"time"
)

// errStorageFull is the error of bytes the store has no room for under
// Config.MaxStorage.
var errStorageFull = errors.New("resumable: upload storage is full")

// storage counts what the store holds against Config.MaxStorage: the
// [store.Footprint] of every upload, plus the bytes being appended. It is
// measured from the store when the handler starts and kept current by
// every change the handler makes. It also keeps within what Config.Room
// says the store's medium can take. A nil *storage is no limit.
type storage struct {
	max  int64      // 0: no bound on what the store holds
	room *roomMeter // nil: the medium is not asked

	mu   sync.Mutex
	used int64
}

// roomRefresh is how long a measure of the medium's room is used before
// the medium is asked again; what is taken meanwhile is subtracted from it.
const roomRefresh = 250 * time.Millisecond

// roomMeter caches Config.Room.
type roomMeter struct {
	measure func() (int64, bool)
	now     func() time.Time
	at      time.Time // of the last measure; zero: never measured
	left    int64     // room at the last measure, less what was taken since
}

// available returns how many more bytes the medium takes now, or at
// least n of them: a measure too small for n is taken again before it is
// believed, so that room made a moment ago is not refused.
func (m *roomMeter) available(n int64) int64 {
	if m == nil {
		return math.MaxInt64
	}
	if now := m.now(); m.at.IsZero() || now.Sub(m.at) >= roomRefresh || now.Before(m.at) || m.left < n {
		m.at, m.left = now, math.MaxInt64
		if free, ok := m.measure(); ok {
			m.left = max(free, 0)
		}
	}
	return m.left
}

func (m *roomMeter) take(n int64) {
	if m != nil {
		m.left -= n
	}
}

// freeLocked returns how many more bytes fit, asking for n, under s.mu.
func (s *storage) freeLocked(n int64) int64 {
	free := s.room.available(n)
	if s.max > 0 {
		free = min(free, s.max-s.used)
	}
	return free
}

// take counts n more bytes if they fit, or returns why they do not: the
// decision and its explanation come from one look at the storage.
func (s *storage) take(n int64) *Error {
	if s == nil || n <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.refusalLocked(n); e != nil {
		return e
	}
	s.used += n
	s.room.take(n)
	return nil
}

// takeUpTo counts as many of n more bytes as fit and returns how many.
func (s *storage) takeUpTo(n int64) int64 {
	if s == nil || n <= 0 {
		return n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n = max(min(n, s.freeLocked(n)), 0)
	s.used += n
	s.room.take(n)
	return n
}

// check returns why n more bytes would not fit now, or nil when they
// would.
func (s *storage) check(n int64) *Error {
	if s == nil || n <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusalLocked(n)
}

// release stops counting n bytes. The medium's room is measured again
// in its time: what was freed on it shows there.
func (s *storage) release(n int64) {
	if s == nil || n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used = max(s.used-n, 0)
}

// refusalLocked returns the error for n more bytes that do not fit, or
// nil when they do, under s.mu.
func (s *storage) refusalLocked(n int64) *Error {
	if s.max > 0 && n > s.max-s.used {
		return ErrStorageFull.with("%d more bytes do not fit: %d of the limit of %d are free", n, max(s.max-s.used, 0), s.max)
	}
	if free := s.room.available(n); n > free {
		return ErrStorageFull.with("%d more bytes do not fit: the storage has room for %d now", n, free)
	}
	return nil
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
