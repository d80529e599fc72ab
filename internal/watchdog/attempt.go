package watchdog

import (
	"context"
	"time"
)

// HostSlots hands out permission to have one more request in flight to a
// host. Acquire blocks until a slot is free or ctx ends.
type HostSlots interface {
	Acquire(ctx context.Context, host string) (release func(), err error)
}

// Limits are what every request of a transfer runs under.
type Limits struct {
	Slots        HostSlots // nil: no per-host cap
	IdleTimeout  time.Duration
	MinSpeed     int64
	MinSpeedTime time.Duration
}

// Attempt runs one request under the host's slot limit and a watchdog, so
// the idle timeout and the minimum speed apply from the moment it is sent
// (a server that accepts the connection and never answers is caught too).
// When the attempt's context ended, the watchdog's verdict or the caller's
// cancellation is returned instead of f's error.
func Attempt(ctx context.Context, host string, l Limits, f func(actx context.Context, wd *Watchdog) error) error {
	if l.Slots != nil {
		release, err := l.Slots.Acquire(ctx, host)
		if err != nil {
			return context.Cause(ctx)
		}
		defer release()
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wd := Start(cancel, l.IdleTimeout, l.MinSpeed, l.MinSpeedTime)
	defer wd.Done()
	if err := f(actx, wd); err != nil {
		if actx.Err() != nil {
			return context.Cause(actx)
		}
		return err
	}
	return nil
}
