package watchdog

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
)

// The idle timeout cuts a stalled attempt, and never one whose bytes keep
// moving, however slowly. Under synctest the clock is fake, so the test is
// exact and instant.
func TestWatchdogIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		wd := Start(cancel, time.Second, 0, 0)
		defer wd.Done()
		for range 30 { // one byte every 900ms for 27s: slow but moving
			time.Sleep(900 * time.Millisecond)
			if ctx.Err() != nil {
				t.Fatalf("moving transfer cut: %v", context.Cause(ctx))
			}
			wd.Add(1)
		}
		start := time.Now()
		<-ctx.Done()
		if got := context.Cause(ctx); got != transfer.ErrIdleTimeout {
			t.Fatalf("cause = %v, want ErrIdleTimeout", got)
		}
		if d := time.Since(start); d < time.Second || d > 1200*time.Millisecond {
			t.Fatalf("stall detected after %v, want about 1s", d)
		}
	})
}

func TestWatchdogMinSpeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		wd := Start(cancel, -1, 1000, 10*time.Second)
		defer wd.Done()
		// 2000 B/s for 30s: fine.
		for range 300 {
			time.Sleep(100 * time.Millisecond)
			wd.Add(200)
		}
		if ctx.Err() != nil {
			t.Fatalf("fast enough transfer cut: %v", context.Cause(ctx))
		}
		// 500 B/s: below the floor for a whole window.
		for i := 0; i < 300 && ctx.Err() == nil; i++ {
			time.Sleep(100 * time.Millisecond)
			wd.Add(50)
		}
		if got := context.Cause(ctx); got != transfer.ErrTooSlow {
			t.Fatalf("cause = %v, want ErrTooSlow", got)
		}
	})
}

func TestWatchdogDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		wd := Start(cancel, -1, 0, 0)
		time.Sleep(time.Hour)
		wd.Done()
		if ctx.Err() != nil {
			t.Fatal("disabled watchdog fired")
		}
	})
}
