package store

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// ErrFull is what a [Meter] refuses bytes with (the error is a
// *[FullError], which matches ErrFull under [errors.Is]).
var ErrFull = errors.New("store: the storage is full")

// FullError says why a [Meter] refused Want more bytes: Free of them fit
// now, under the limit Max when that is what refused them, or in the
// medium's room when Max is 0.
type FullError struct {
	Want, Free, Max int64
}

func (e *FullError) Error() string { return "store: the storage is full: " + e.Reason() }

// Reason says why, without the package's prefix, for a client.
func (e *FullError) Reason() string {
	if e.Max > 0 {
		return fmt.Sprintf("%d more bytes do not fit: %d of the limit of %d are free", e.Want, e.Free, e.Max)
	}
	return fmt.Sprintf("%d more bytes do not fit: the storage has room for %d now", e.Want, e.Free)
}

// Is reports whether target is ErrFull.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// MeterConfig configures a [Meter].
type MeterConfig struct {
	// Max bounds the bytes counted; 0 or negative: no bound of its own.
	Max int64
	// Used is what is counted to start with: what the storage holds
	// already (see [MeasureUsage]).
	Used int64
	// Room, if set, says how many more bytes the medium may take now (for
	// files: the file system's free space less what is kept back for the
	// system), and whether it knows. It is asked at most every 250 ms;
	// what is taken meanwhile is subtracted, so space freed on the medium
	// is usable at once and others filling it are seen.
	Room func() (int64, bool)
	// Now is the clock Room's refreshes follow; nil means time.Now.
	Now func() time.Time
}

// Meter counts the bytes held in storage against a limit and against the
// room its medium has, for everything that draws on the same storage:
// ferry's server gives one to its uploads and its live streams. It is safe
// for concurrent use; every decision and its explanation come from one
// look at the count. A nil *Meter counts nothing and refuses nothing.
type Meter struct {
	max  int64      // 0: no bound on what is counted
	room *roomMeter // nil: the medium is not asked

	mu   sync.Mutex
	used int64
}

// NewMeter returns a Meter for c.
func NewMeter(c MeterConfig) *Meter {
	m := &Meter{max: max(c.Max, 0), used: c.Used}
	if c.Room != nil {
		now := c.Now
		if now == nil {
			now = time.Now
		}
		m.room = &roomMeter{measure: c.Room, now: now}
	}
	return m
}

// Take counts n more bytes if they fit; otherwise it returns a
// *[FullError] and counts nothing.
func (m *Meter) Take(n int64) error {
	if m == nil || n <= 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.refusalLocked(n); err != nil {
		return err
	}
	m.countLocked(n)
	return nil
}

// Check returns the *[FullError] Take would return for n bytes now, or
// nil, and counts nothing.
func (m *Meter) Check(n int64) error {
	if m == nil || n <= 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refusalLocked(n)
}

// TakeUpTo counts as many of n more bytes as fit and returns how many.
func (m *Meter) TakeUpTo(n int64) int64 {
	if m == nil || n <= 0 {
		return n
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n = max(min(n, m.freeLocked(n)), 0)
	m.countLocked(n)
	return n
}

// Release stops counting n bytes. The medium's room is measured again in
// its time: what was freed on it shows there.
func (m *Meter) Release(n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.used = max(m.used-n, 0)
}

// Used returns how many bytes are counted.
func (m *Meter) Used() int64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// freeLocked returns how many more bytes fit, asking for n, under m.mu.
func (m *Meter) freeLocked(n int64) int64 {
	free := m.room.available(n)
	if m.max > 0 {
		free = min(free, m.max-m.used)
	}
	return free
}

// refusalLocked returns the error for n more bytes that do not fit, or nil
// when they do, under m.mu.
func (m *Meter) refusalLocked(n int64) error {
	if m.max > 0 && n > m.max-m.used {
		return &FullError{Want: n, Free: max(m.max-m.used, 0), Max: m.max}
	}
	if free := m.room.available(n); n > free {
		return &FullError{Want: n, Free: free}
	}
	return nil
}

func (m *Meter) countLocked(n int64) {
	m.used += n
	m.room.take(n)
}

// roomRefresh is how long a measure of the medium's room is used before
// the medium is asked again; what is taken meanwhile is subtracted from it.
const roomRefresh = 250 * time.Millisecond

// roomMeter caches MeterConfig.Room.
type roomMeter struct {
	measure func() (int64, bool)
	now     func() time.Time
	at      time.Time // of the last measure; zero: never measured
	left    int64     // room at the last measure, less what was taken since
}

// available returns how many more bytes the medium takes now, or at least
// n of them: a measure too small for n is taken again before it is
// believed, so that room made a moment ago is not refused.
func (r *roomMeter) available(n int64) int64 {
	if r == nil {
		return math.MaxInt64
	}
	if now := r.now(); r.at.IsZero() || now.Sub(r.at) >= roomRefresh || now.Before(r.at) || r.left < n {
		r.at, r.left = now, math.MaxInt64
		if free, ok := r.measure(); ok {
			r.left = max(free, 0)
		}
	}
	return r.left
}

func (r *roomMeter) take(n int64) {
	if r != nil {
		r.left -= n
	}
}
