package wan

import (
	"math/rand/v2"
	"time"
)

// Dir is the direction a packet travels through the emulated link.
type Dir int

const (
	// Down is from the server to the client (a download's data).
	Down Dir = iota
	// Up is from the client to the server (requests, ACKs).
	Up
)

func (d Dir) String() string {
	if d == Down {
		return "down"
	}
	return "up"
}

// Impairment is what the link does to the packets of one direction.
type Impairment struct {
	// Delay is added to every packet (one-way).
	Delay time.Duration
	// Loss is the probability that a packet is dropped, 0 to 1,
	// independently of every other packet.
	Loss float64
}

// DirStats counts one direction's packets.
type DirStats struct {
	Packets  uint64 `json:"packets"`  // offered to the line
	Bytes    uint64 `json:"bytes"`    // offered to the line
	Lost     uint64 `json:"lost"`     // dropped at random (Loss)
	Overflow uint64 `json:"overflow"` // dropped because the line was full
}

// Line is the core of the delay/loss forwarder, free of I/O and of the
// clock: packets are pushed in with the time they arrived, each is dropped
// with its direction's loss probability or held until its due time
// (arrival + the direction's delay), and Pop hands them out in order of
// due time, first in first out among equal times. Times are nanoseconds on
// any monotonic clock.
//
// The held packets are a binary min-heap on (due, sequence): O(log n) per
// packet, with no goroutine or timer per packet. A Line is not safe for
// concurrent use.
type Line[P any] struct {
	imp   [2]Impairment
	rnd   *rand.Rand
	limit int
	heap  []held[P]
	seq   uint64
	stats [2]DirStats
}

type held[P any] struct {
	due int64
	seq uint64
	p   P
}

// NewLine returns a line with the impairments of the Down and Up
// directions, holding at most limit packets (more are dropped and counted
// as Overflow), with its random drops drawn from seed.
func NewLine[P any](down, up Impairment, limit int, seed uint64) *Line[P] {
	return &Line[P]{
		imp:   [2]Impairment{down, up},
		rnd:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		limit: max(limit, 1),
		heap:  make([]held[P], 0, min(max(limit, 1), 1<<16)),
	}
}

// Push offers packet p of size bytes, travelling in direction dir, that
// arrived at now. It returns whether the line keeps it; a packet it does
// not hold (lost or overflow) is the caller's to recycle. head reports
// that p is now the first packet due, so a sleeping sender must wake
// earlier.
func (l *Line[P]) Push(now int64, dir Dir, size int, p P) (kept, head bool) {
	st := &l.stats[dir&1]
	st.Packets++
	st.Bytes += uint64(size)
	imp := l.imp[dir&1]
	if imp.Loss > 0 && l.rnd.Float64() < imp.Loss {
		st.Lost++
		return false, false
	}
	if len(l.heap) >= l.limit {
		st.Overflow++
		return false, false
	}
	l.seq++
	l.heap = append(l.heap, held[P]{due: now + int64(imp.Delay), seq: l.seq, p: p})
	l.up(len(l.heap) - 1)
	return true, l.heap[0].seq == l.seq
}

// Next returns the due time of the first packet, if any is held.
func (l *Line[P]) Next() (due int64, ok bool) {
	if len(l.heap) == 0 {
		return 0, false
	}
	return l.heap[0].due, true
}

// Pop removes and returns the first packet if it is due at now.
func (l *Line[P]) Pop(now int64) (p P, due int64, ok bool) {
	if len(l.heap) == 0 || l.heap[0].due > now {
		return p, 0, false
	}
	h := l.heap[0]
	n := len(l.heap) - 1
	l.heap[0] = l.heap[n]
	l.heap[n] = held[P]{}
	l.heap = l.heap[:n]
	if n > 0 {
		l.down(0)
	}
	return h.p, h.due, true
}

// Len is the number of packets held.
func (l *Line[P]) Len() int { return len(l.heap) }

// Stats returns the counts of direction dir so far.
func (l *Line[P]) Stats(dir Dir) DirStats { return l.stats[dir&1] }

func (l *Line[P]) less(i, j int) bool {
	a, b := &l.heap[i], &l.heap[j]
	return a.due < b.due || a.due == b.due && a.seq < b.seq
}

func (l *Line[P]) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !l.less(i, parent) {
			return
		}
		l.heap[i], l.heap[parent] = l.heap[parent], l.heap[i]
		i = parent
	}
}

func (l *Line[P]) down(i int) {
	n := len(l.heap)
	for {
		least := i
		if c := 2*i + 1; c < n && l.less(c, least) {
			least = c
		}
		if c := 2*i + 2; c < n && l.less(c, least) {
			least = c
		}
		if least == i {
			return
		}
		l.heap[i], l.heap[least] = l.heap[least], l.heap[i]
		i = least
	}
}

// Classify returns the direction of an IPv4 packet: Down when its
// destination address is in the client's network (clientNet, clientMask
// as 32-bit big-endian numbers), else Up. A packet too short to hold an
// IPv4 header, or not IPv4, is Up.
func Classify(pkt []byte, clientNet, clientMask uint32) Dir {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return Up
	}
	dst := uint32(pkt[16])<<24 | uint32(pkt[17])<<16 | uint32(pkt[18])<<8 | uint32(pkt[19])
	if dst&clientMask == clientNet&clientMask {
		return Down
	}
	return Up
}
