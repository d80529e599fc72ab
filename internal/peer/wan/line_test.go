package wan

import (
	"math"
	"testing"
	"time"
)

func TestLineDelaysInOrder(t *testing.T) {
	down := Impairment{Delay: 25 * time.Millisecond}
	up := Impairment{Delay: 5 * time.Millisecond}
	l := NewLine[int](down, up, 100, 1)
	ms := int64(time.Millisecond)
	// Packets 0..9 arrive 1 ms apart, alternating directions.
	for i := range 10 {
		dir := Dir(i % 2)
		kept, _ := l.Push(int64(i)*ms, dir, 100, i)
		if !kept {
			t.Fatalf("packet %d dropped without loss", i)
		}
	}
	if _, _, ok := l.Pop(4 * ms); ok {
		t.Fatalf("a packet came out before its delay")
	}
	var got []int
	var dues []int64
	for now := int64(0); now <= 40*ms; now += ms / 2 {
		for {
			p, due, ok := l.Pop(now)
			if !ok {
				break
			}
			if due > now {
				t.Fatalf("packet %d due %d popped at %d", p, due, now)
			}
			got = append(got, p)
			dues = append(dues, due)
		}
	}
	// Up packets (odd) are due at i+5 ms, down (even) at i+25 ms.
	want := []int{1, 3, 5, 7, 9, 0, 2, 4, 6, 8}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
		wantDue := int64(want[i])*ms + 5*ms
		if want[i]%2 == 0 {
			wantDue = int64(want[i])*ms + 25*ms
		}
		if dues[i] != wantDue {
			t.Errorf("packet %d due %d, want %d", want[i], dues[i], wantDue)
		}
	}
	if l.Len() != 0 {
		t.Errorf("%d packets left", l.Len())
	}
}

func TestLineFIFOAmongEqualTimes(t *testing.T) {
	l := NewLine[int](Impairment{Delay: time.Millisecond}, Impairment{}, 1000, 1)
	for i := range 500 {
		l.Push(0, Down, 1, i) // all due at the same time
	}
	for i := range 500 {
		p, _, ok := l.Pop(int64(time.Millisecond))
		if !ok || p != i {
			t.Fatalf("pop %d: got %d, %v", i, p, ok)
		}
	}
}

func TestLineHeadAndNext(t *testing.T) {
	l := NewLine[int](Impairment{Delay: 10}, Impairment{Delay: 2}, 10, 1)
	if _, ok := l.Next(); ok {
		t.Fatal("empty line has a next packet")
	}
	if _, head := l.Push(0, Down, 1, 0); !head {
		t.Error("first packet is not the head")
	}
	if _, head := l.Push(1, Down, 1, 1); head {
		t.Error("a later packet became the head")
	}
	if _, head := l.Push(2, Up, 1, 2); !head { // due 4, before 10
		t.Error("an earlier-due packet is not the head")
	}
	if due, _ := l.Next(); due != 4 {
		t.Errorf("next due %d, want 4", due)
	}
}

func TestLineLossRate(t *testing.T) {
	const n = 200_000
	for _, loss := range []float64{0, 0.01, 0.1} {
		l := NewLine[int](Impairment{Loss: loss}, Impairment{Loss: loss / 2}, n, 42)
		for i := range n {
			if kept, _ := l.Push(int64(i), Dir(i%2), 1500, i); kept {
				l.Pop(int64(i)) // keep the line short
			}
		}
		for _, c := range []struct {
			dir Dir
			p   float64
		}{{Down, loss}, {Up, loss / 2}} {
			st := l.Stats(c.dir)
			if st.Packets != n/2 || st.Bytes != n/2*1500 {
				t.Errorf("loss %g %v: %d packets, %d bytes", loss, c.dir, st.Packets, st.Bytes)
			}
			got := float64(st.Lost) / float64(st.Packets)
			// Within 5 standard deviations of a binomial proportion.
			sd := math.Sqrt(c.p * (1 - c.p) / float64(st.Packets))
			if math.Abs(got-c.p) > 5*sd+1e-9 {
				t.Errorf("loss %g %v: dropped %.4f%%", c.p, c.dir, got*100)
			}
		}
	}
}

func TestLineSeedRepeats(t *testing.T) {
	// The same seed drops the same packets: a run can be repeated.
	a := NewLine[int](Impairment{Loss: 0.3}, Impairment{}, 10, 7)
	b := NewLine[int](Impairment{Loss: 0.3}, Impairment{}, 10, 7)
	for i := range 1000 {
		ka, _ := a.Push(0, Down, 1, i)
		kb, _ := b.Push(0, Down, 1, i)
		if ka != kb {
			t.Fatalf("packet %d: same seed, different drops", i)
		}
		a.Pop(0)
		b.Pop(0)
	}
}

func TestLineOverflow(t *testing.T) {
	l := NewLine[int](Impairment{Delay: time.Second}, Impairment{}, 3, 1)
	for i := range 5 {
		l.Push(0, Down, 1, i)
	}
	if st := l.Stats(Down); st.Overflow != 2 || l.Len() != 3 {
		t.Errorf("overflow %d, held %d; want 2, 3", st.Overflow, l.Len())
	}
}

// TestLineSustainsRate pushes and pops 100 Mbit/s of 1500-byte packets
// each way for a simulated 10 s (with a fake clock) and checks that every
// packet leaves within a timer tick of its due time, in order, and that
// the line keeps up with far more than that many packets per second.
func TestLineSustainsRate(t *testing.T) {
	const (
		pps   = 100e6 / 8 / 1500 // ≈ 8333 per second each way
		secs  = 10
		delay = 25 * time.Millisecond
		tick  = int64(50 * time.Microsecond)
	)
	l := NewLine[int64](Impairment{Delay: delay}, Impairment{Delay: delay}, 16384, 1)
	gap := int64(time.Second) * 1500 * 8 / 100e6 // 120 µs
	var next, lastDue [2]int64
	out := 0
	start := time.Now()
	for now := int64(0); now < secs*int64(time.Second); now += tick {
		for d := range 2 {
			for next[d] <= now {
				l.Push(next[d], Dir(d), 1500, next[d]<<1|int64(d))
				next[d] += gap
			}
		}
		for {
			p, due, ok := l.Pop(now)
			if !ok {
				break
			}
			d := p & 1
			if due < lastDue[d] {
				t.Fatalf("out of order in direction %d", d)
			}
			lastDue[d] = due
			if now-due > tick {
				t.Fatalf("packet left %v late", time.Duration(now-due))
			}
			out++
		}
	}
	want := int(2 * pps * (secs - delay.Seconds()))
	if out < want-4 {
		t.Errorf("%d packets out, want about %d", out, want)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("%d packets took %v of CPU: too slow for %.0f packets/s", out, el, 2*pps)
	}
}

func TestClassify(t *testing.T) {
	pkt := make([]byte, 20)
	pkt[0] = 0x45
	copy(pkt[16:], []byte{10, 77, 2, 1})
	cnet, cmask := uint32(10<<24|77<<16|2<<8), uint32(0xffffff00)
	if d := Classify(pkt, cnet, cmask); d != Down {
		t.Errorf("to the client: %v", d)
	}
	copy(pkt[16:], []byte{10, 77, 1, 1})
	if d := Classify(pkt, cnet, cmask); d != Up {
		t.Errorf("to the server: %v", d)
	}
	if d := Classify(pkt[:10], cnet, cmask); d != Up {
		t.Errorf("short packet: %v", d)
	}
	pkt[0] = 0x60
	if d := Classify(pkt, cnet, cmask); d != Up {
		t.Errorf("IPv6: %v", d)
	}
}
