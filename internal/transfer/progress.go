package transfer

import (
	"sync"
	"sync/atomic"
	"time"
)

// Progress is a snapshot of a transfer's advance.
type Progress struct {
	// Done is the number of bytes of the result that are in place, including
	// bytes kept from an earlier run.
	Done int64 `json:"done"`
	// Expected is the size of the whole result, or -1 while it is unknown.
	Expected int64 `json:"expected"`
	// Speed is the recent transfer rate in bytes per second.
	Speed float64 `json:"speed"`
}

// Fraction is Done/Expected in [0,1], or -1 when Expected is unknown.
func (p Progress) Fraction() float64 {
	if p.Expected <= 0 {
		if p.Expected == 0 {
			return 1
		}
		return -1
	}
	return min(1, float64(p.Done)/float64(p.Expected))
}

// ETA estimates the time left at the current speed; ok is false when it
// cannot be known.
func (p Progress) ETA() (d time.Duration, ok bool) {
	if p.Expected < 0 || p.Speed <= 0 {
		return 0, false
	}
	left := max(0, p.Expected-p.Done)
	return time.Duration(float64(left) / p.Speed * float64(time.Second)), true
}

// Meter counts bytes on the hot path with atomics and derives a speed from
// samples taken off the hot path. Its methods are safe for concurrent use.
type Meter struct {
	done     atomic.Int64
	expected atomic.Int64
	moved    atomic.Int64 // bytes moved over the network by this run

	mu      sync.Mutex
	samples [16]sample
	n, head int
	speed   float64
}

type sample struct {
	at    time.Time
	moved int64
}

// NewMeter returns a meter with an unknown expected size.
func NewMeter() *Meter {
	m := &Meter{}
	m.expected.Store(-1)
	return m
}

// Add records n bytes that arrived and were written.
func (m *Meter) Add(n int64) {
	m.done.Add(n)
	m.moved.Add(n)
}

// Found records n bytes in place that did not move in this run (a server
// says it holds more of an upload than was known).
func (m *Meter) Found(n int64) { m.done.Add(n) }

// Reset sets the position after a (re)start: done bytes are already in place
// and expected is the total (-1 if unknown).
func (m *Meter) Reset(done, expected int64) {
	m.done.Store(done)
	m.expected.Store(expected)
}

// SetExpected updates the expected size once it becomes known.
func (m *Meter) SetExpected(n int64) { m.expected.Store(n) }

// Moved is the number of bytes that crossed the network during this meter's life.
func (m *Meter) Moved() int64 { return m.moved.Load() }

// Sample records the current count at now and recomputes the speed over the
// retained window (up to 16 samples). Call it periodically, e.g. every 250ms.
func (m *Meter) Sample(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples[m.head] = sample{now, m.moved.Load()}
	m.head = (m.head + 1) % len(m.samples)
	if m.n < len(m.samples) {
		m.n++
	}
	oldest := m.samples[(m.head-m.n+len(m.samples))%len(m.samples)]
	newest := m.samples[(m.head-1+len(m.samples))%len(m.samples)]
	if dt := newest.at.Sub(oldest.at).Seconds(); dt > 0 {
		m.speed = float64(newest.moved-oldest.moved) / dt
	}
}

// Snapshot returns the current progress.
func (m *Meter) Snapshot() Progress {
	m.mu.Lock()
	speed := m.speed
	m.mu.Unlock()
	return Progress{Done: m.done.Load(), Expected: m.expected.Load(), Speed: speed}
}
