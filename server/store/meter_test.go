package store_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/server/store"
)

// A refusal is decided and explained in one look at the count: bytes
// released in between (another upload removed) cannot send the
// explanation to a room there is none of (a limit alone), nor make it say
// "full" of bytes that fit.
func TestMeterRefusal(t *testing.T) {
	m := store.NewMeter(store.MeterConfig{Max: 100, Used: 100})
	for _, err := range []error{m.Check(50), m.Take(50)} {
		fe, ok := errors.AsType[*store.FullError](err)
		if !ok || !errors.Is(err, store.ErrFull) || fe.Want != 50 || fe.Free != 0 || fe.Max != 100 {
			t.Errorf("a full meter refused 50 bytes with %v, want a FullError naming the limit", err)
		}
	}
	m.Release(100) // another request removed an upload meanwhile
	if err := m.Take(50); err != nil {
		t.Errorf("Take(50) after a release = %v", err)
	}
	if got := m.TakeUpTo(80); got != 50 {
		t.Errorf("TakeUpTo(80) with 50 free = %d", got)
	}

	room := store.NewMeter(store.MeterConfig{Room: func() (int64, bool) { return 10, true }})
	fe, ok := errors.AsType[*store.FullError](room.Take(11))
	if !ok || fe.Free != 10 || fe.Max != 0 {
		t.Errorf("Take(11) with room for 10 = %v, want a FullError naming the room", fe)
	}
	var none *store.Meter
	if none.Take(1<<62) != nil || none.TakeUpTo(7) != 7 {
		t.Error("a nil meter refused bytes")
	}
}

// Takers racing for the last bytes never take more than the limit, and
// what is released is takeable again.
func TestMeterConcurrent(t *testing.T) {
	const max = 1000
	m := store.NewMeter(store.MeterConfig{Max: max})
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := int64(0)
	for range 8 {
		wg.Go(func() {
			for range 500 {
				if m.Take(3) == nil {
					mu.Lock()
					taken += 3
					mu.Unlock()
				}
				n := m.TakeUpTo(5)
				m.Release(n)
			}
		})
	}
	wg.Wait()
	if taken > max || m.Used() != taken {
		t.Errorf("took %d of a limit of %d; the meter counts %d", taken, max, m.Used())
	}
}
