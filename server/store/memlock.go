package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// releasePoll is how often a waiting Lock asks the holder again to release
// the lock: the holder may refuse while it makes progress and agree once it
// stalls.
const releasePoll = 50 * time.Millisecond

// MemoryLocker is a [Locker] for one process. The zero value is ready to
// use; it is safe for concurrent use.
type MemoryLocker struct {
	mu    sync.Mutex
	locks map[string]*memHold
}

var _ Locker = (*MemoryLocker)(nil)

// memHold is one holder of a lock.
type memHold struct {
	requestRelease func()
	released       chan struct{} // closed by Unlock
}

// NewLock returns the lock for id. Locks for the same ID exclude each other.
func (l *MemoryLocker) NewLock(id string) (Lock, error) {
	return &memLock{l: l, id: id}, nil
}

type memLock struct {
	l    *MemoryLocker
	id   string
	hold *memHold
}

func (m *memLock) Lock(ctx context.Context, requestRelease func()) error {
	if m.hold != nil {
		return fmt.Errorf("store: lock %s: already held by this Lock", m.id)
	}
	tick := time.NewTicker(releasePoll)
	defer tick.Stop()
	for {
		m.l.mu.Lock()
		if m.l.locks == nil {
			m.l.locks = make(map[string]*memHold)
		}
		h := m.l.locks[m.id]
		if h == nil {
			m.hold = &memHold{requestRelease: requestRelease, released: make(chan struct{})}
			m.l.locks[m.id] = m.hold
			m.l.mu.Unlock()
			return nil
		}
		m.l.mu.Unlock()

		if h.requestRelease != nil {
			h.requestRelease()
		}
		select {
		case <-h.released:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: %s (%w)", ErrLockTimeout, m.id, context.Cause(ctx))
		}
	}
}

func (m *memLock) Unlock() error {
	if m.hold == nil {
		return fmt.Errorf("store: unlock %s: not locked", m.id)
	}
	m.l.mu.Lock()
	if m.l.locks[m.id] == m.hold {
		delete(m.l.locks, m.id)
	}
	m.l.mu.Unlock()
	close(m.hold.released)
	m.hold = nil
	return nil
}
