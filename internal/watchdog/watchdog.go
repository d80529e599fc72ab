// Package watchdog cancels a transfer attempt that stops moving bytes (the
// idle timeout) or moves them too slowly for too long (a minimum speed), so
// a stall is caught by its symptom and a slow but moving transfer is never
// cut by a total timeout.
package watchdog

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
)

// Watchdog watches one attempt. Its methods are safe for concurrent use.
type Watchdog struct {
	last   atomic.Int64 // unix nanos of the last byte that moved
	bytes  atomic.Int64
	paused atomic.Int32 // > 0 while waiting on purpose (the rate limit)
	stop   chan struct{}
}

// Start watches until Done is called, cancelling with transfer.ErrIdleTimeout
// or transfer.ErrTooSlow. idle <= 0 disables the idle check; minSpeed <= 0
// disables the speed check.
func Start(cancel context.CancelCauseFunc, idle time.Duration, minSpeed int64, window time.Duration) *Watchdog {
	w := &Watchdog{stop: make(chan struct{})}
	w.Kick()
	if idle <= 0 && minSpeed <= 0 {
		return w
	}
	tick := time.Second
	if idle > 0 {
		tick = min(tick, max(idle/8, time.Millisecond))
	}
	if minSpeed > 0 {
		tick = min(tick, max(window/8, time.Millisecond))
	}
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		winStart, winBytes := time.Now(), int64(0)
		for {
			select {
			case <-w.stop:
				return
			case now := <-t.C:
				if w.paused.Load() > 0 {
					continue
				}
				if idle > 0 && now.Sub(time.Unix(0, w.last.Load())) >= idle {
					cancel(transfer.ErrIdleTimeout)
					return
				}
				if minSpeed > 0 && now.Sub(winStart) >= window {
					b := w.bytes.Load()
					if float64(b-winBytes)/now.Sub(winStart).Seconds() < float64(minSpeed) {
						cancel(transfer.ErrTooSlow)
						return
					}
					winStart, winBytes = now, b
				}
			}
		}
	}()
	return w
}

// Kick records activity without body bytes (headers written or received).
func (w *Watchdog) Kick() { w.last.Store(time.Now().UnixNano()) }

// Add records n body bytes.
func (w *Watchdog) Add(n int) {
	w.bytes.Add(int64(n))
	w.Kick()
}

// Hold stops the clocks while the transfer waits on purpose, such as for
// the bandwidth budget; Release starts them again.
func (w *Watchdog) Hold() { w.paused.Add(1) }

// Release ends a Hold.
func (w *Watchdog) Release() {
	w.Kick()
	w.paused.Add(-1)
}

// Done stops watching.
func (w *Watchdog) Done() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
}
