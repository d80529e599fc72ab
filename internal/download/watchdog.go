package download

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
)

// watchdog cancels an attempt that stops moving bytes (idle timeout) or moves
// them too slowly for too long (minimum speed), so a stall is caught by its
// symptom and a slow but moving transfer is never cut by a total timeout.
type watchdog struct {
	last   atomic.Int64 // unix nanos of the last byte that moved
	bytes  atomic.Int64
	paused atomic.Int32 // > 0 while waiting on purpose (the rate limit)
	stop   chan struct{}
}

// startWatchdog watches until stop is called. idle <= 0 disables the idle
// check; minSpeed <= 0 disables the speed check.
func startWatchdog(cancel context.CancelCauseFunc, idle time.Duration, minSpeed int64, window time.Duration) *watchdog {
	w := &watchdog{stop: make(chan struct{})}
	w.kick()
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

// kick records activity without body bytes (headers written or received).
func (w *watchdog) kick() { w.last.Store(time.Now().UnixNano()) }

// add records n body bytes.
func (w *watchdog) add(n int) {
	w.bytes.Add(int64(n))
	w.kick()
}

// hold stops the clocks while the transfer waits on purpose, such as for
// the bandwidth budget; release starts them again.
func (w *watchdog) hold() { w.paused.Add(1) }

func (w *watchdog) release() {
	w.kick()
	w.paused.Add(-1)
}

func (w *watchdog) done() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
}
