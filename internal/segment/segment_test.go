package segment

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// Workers fetching at random speeds, some failing mid-request, cover every
// byte exactly once: no gap, no byte written twice, whatever the steals.
func TestEveryByteExactlyOnce(t *testing.T) {
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		size := int64(1 + rng.IntN(1<<20))
		missing := []Range{{0, size}}
		if seed%3 == 0 && size > 10 { // a resumed download with holes
			missing = []Range{{0, size / 3}, {size / 2, size/2 + size/5}, {size - size/10, size}}
		}
		s, err := New(size, missing, int64(1+rng.IntN(64<<10)), int64(1+rng.IntN(4096)))
		if err != nil {
			t.Fatal(err)
		}
		workers := 1 + rng.IntN(8)
		s.Split(workers)
		written := make([]byte, size)
		for _, r := range missing {
			for i := r.Start; i < r.End; i++ {
				written[i] = 0
			}
		}
		var wmu sync.Mutex
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, uint64(w)+2))
				for steps := 0; steps < 1e6; steps++ {
					rg, ok := s.Next(w)
					if !ok {
						return
					}
					pos := rg.Start
					for pos < rg.End {
						if r.IntN(50) == 0 { // the connection drops
							s.Release(w)
							break
						}
						want := min(int64(1+r.IntN(8192)), rg.End-pos)
						n := s.Claim(w, want)
						wmu.Lock()
						for i := pos; i < pos+n; i++ {
							written[i]++
						}
						wmu.Unlock()
						if err := s.Advance(w, n); err != nil {
							t.Error(err)
							return
						}
						pos += n
						if n < want {
							break // the rest of the request was stolen
						}
					}
				}
				t.Error("worker did not finish in a million steps")
			}()
		}
		wg.Wait()
		if !s.Complete() || len(s.Missing()) != 0 || s.Prefix() != size {
			t.Fatalf("seed %d: not complete: done %d of %d, missing %v", seed, s.Done(), size, s.Missing())
		}
		inMissing := func(i int64) bool {
			for _, r := range missing {
				if i >= r.Start && i < r.End {
					return true
				}
			}
			return false
		}
		for i, n := range written {
			if want := map[bool]byte{true: 1, false: 0}[inMissing(int64(i))]; n != want {
				t.Fatalf("seed %d: byte %d written %d times, want %d", seed, i, n, want)
			}
		}
	}
}

func TestStealTakesBackHalfOfLargestUnrequestedRun(t *testing.T) {
	s, _ := New(100, []Range{{0, 100}}, 10, 5)
	r, _ := s.Next(0) // worker 0 owns [0,100), requests [0,10)
	if r != (Range{0, 10}) {
		t.Fatalf("first request %v, want [0,10)", r)
	}
	r, _ = s.Next(1) // nothing unowned: steals half of [10,100)
	if r != (Range{55, 65}) {
		t.Fatalf("stolen request %v, want [55,65)", r)
	}
	s.Claim(1, 10)
	s.Advance(1, 10)
	r, _ = s.Next(1)
	if r != (Range{65, 75}) {
		t.Fatalf("next request %v, want [65,75)", r)
	}
	if got := s.Missing(); !slices.Equal(got, []Range{{0, 55}, {65, 100}}) {
		t.Fatalf("Missing = %v", got)
	}
	if err := s.Advance(0, 1); err == nil {
		t.Fatal("advancing past what was claimed must fail")
	}
	if n := s.Claim(0, 11); n != 10 {
		t.Fatalf("Claim(11) = %d, want the 10 bytes requested", n)
	}
	s.Advance(0, 10)
	if s.Prefix() != 10 || s.Done() != 20 {
		t.Fatalf("prefix %d done %d, want 10 and 20", s.Prefix(), s.Done())
	}
	if got := s.Missing(); !slices.Equal(got, []Range{{10, 55}, {65, 100}}) {
		t.Fatalf("Missing = %v", got)
	}
}

// Requests shrink as the unrequested bytes run out, so workers finish
// together.
func TestRequestsShrinkTowardsTheEnd(t *testing.T) {
	s, _ := New(1000, []Range{{0, 1000}}, 500, 10)
	if r, _ := s.Next(0); r != (Range{0, 500}) {
		t.Fatalf("first request %v, want a full chunk [0,500)", r)
	}
	// 500 bytes unrequested, two workers busy: a quarter of it each.
	if r, _ := s.Next(1); r != (Range{750, 875}) {
		t.Fatalf("stolen request %v, want [750,875)", r)
	}
}

// NextUpTo bounds a request below the scheduler's own size, never above it.
func TestNextUpTo(t *testing.T) {
	s, _ := New(1000, []Range{{0, 1000}}, 500, 10)
	if r, _ := s.NextUpTo(0, 100); r != (Range{0, 100}) {
		t.Fatalf("bounded request %v, want [0,100)", r)
	}
	s.Claim(0, 100)
	if err := s.Advance(0, 100); err != nil {
		t.Fatal(err)
	}
	// 900 unrequested, one worker: the scheduler's own bound is 450.
	if r, _ := s.NextUpTo(0, 800); r != (Range{100, 550}) {
		t.Fatalf("request %v, want the scheduler's bound [100,550)", r)
	}
}

func TestSplit(t *testing.T) {
	s, _ := New(1000, []Range{{0, 1000}}, 1000, 1)
	s.Split(4)
	var got []int64
	for w := range 4 {
		r, ok := s.Next(w)
		if !ok {
			t.Fatalf("worker %d got nothing", w)
		}
		got = append(got, r.Start)
	}
	if want := []int64{0, 250, 500, 750}; !slices.Equal(got, want) {
		t.Fatalf("workers start at %v, want %v", got, want)
	}
}

func TestNewRejectsBadRanges(t *testing.T) {
	for _, m := range [][]Range{{{5, 3}}, {{0, 11}}, {{0, 5}, {4, 8}}, {{-1, 2}}} {
		if _, err := New(10, m, 1, 1); err == nil {
			t.Errorf("New accepted %v", m)
		}
	}
}
