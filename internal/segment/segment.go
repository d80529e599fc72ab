// Package segment plans a segmented parallel download: which byte ranges are
// in place, which are being fetched and by whom, and which are left. Workers
// ask for their next range; a worker whose segment is done steals half of the
// largest part of another segment that nobody has requested yet, so the tail
// of a download is shared instead of waiting on one slow connection. In-flight
// requests are never cut short by a steal.
package segment

import (
	"fmt"
	"slices"
	"sync"
)

// Range is the half-open byte range [Start, End).
type Range struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Len is the number of bytes in r.
func (r Range) Len() int64 { return r.End - r.Start }

func (r Range) String() string { return fmt.Sprintf("[%d,%d)", r.Start, r.End) }

// seg is one contiguous run of missing bytes. [pos, reqEnd) is requested by
// its owner, who has claimed [pos, claimed) for writing, and [reqEnd, end)
// is not requested by anyone yet.
type seg struct {
	pos, claimed, reqEnd, end int64
	owner                     int // worker id, or -1
}

// Scheduler hands out ranges to workers. Its methods are safe for concurrent use.
type Scheduler struct {
	mu       sync.Mutex
	size     int64
	segs     []*seg
	chunk    int64 // most bytes one request asks for
	minSteal int64 // smallest unrequested run worth splitting
}

// New returns a scheduler for a resource of size bytes of which the ranges
// in missing are still to be fetched. missing must be sorted, disjoint and
// within [0, size); New checks it. chunk bounds a single request (so a
// steal never waits long for the victim's request to end) and minSteal the
// smallest run worth splitting.
func New(size int64, missing []Range, chunk, minSteal int64) (*Scheduler, error) {
	s := &Scheduler{size: size, chunk: max(chunk, 1), minSteal: max(minSteal, 1)}
	var prev int64
	for _, r := range missing {
		if r.Start < prev || r.End <= r.Start || r.End > size {
			return nil, fmt.Errorf("segment: invalid missing range %v of %d", r, size)
		}
		prev = r.End
		s.segs = append(s.segs, &seg{pos: r.Start, claimed: r.Start, reqEnd: r.Start, end: r.End, owner: -1})
	}
	return s, nil
}

// Split divides every missing run longer than a fair share so that n
// workers can start at once; call it before handing out ranges.
func (s *Scheduler) Split(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var left int64
	for _, g := range s.segs {
		left += g.end - g.pos
	}
	share := max(left/int64(max(n, 1)), s.minSteal)
	var out []*seg
	for _, g := range s.segs {
		for g.end-g.pos > share+share/2 {
			out = append(out, &seg{pos: g.pos, claimed: g.pos, reqEnd: g.pos, end: g.pos + share, owner: -1})
			g = &seg{pos: g.pos + share, claimed: g.pos + share, reqEnd: g.pos + share, end: g.end, owner: -1}
		}
		out = append(out, g)
	}
	s.segs = out
}

// Next returns the range worker w should request next: more of its own
// segment, else an unowned segment, else the back half of the largest
// unrequested run of another segment. ok is false when nothing is left to
// request (other workers may still be finishing theirs).
func (s *Scheduler) Next(w int) (r Range, ok bool) { return s.NextUpTo(w, 0) }

// NextUpTo is Next with the request bounded to most bytes (when positive)
// besides the scheduler's own bound.
func (s *Scheduler) NextUpTo(w int, most int64) (r Range, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.owned(w)
	if g == nil {
		for _, c := range s.segs {
			if c.owner < 0 && c.pos < c.end {
				g = c
				break
			}
		}
	}
	if g == nil {
		g = s.steal()
	}
	if g == nil {
		return Range{}, false
	}
	g.owner = w
	g.claimed = g.pos
	size := s.requestSize()
	if most > 0 {
		size = min(size, most)
	}
	g.reqEnd = min(g.end, g.pos+size)
	return Range{g.pos, g.reqEnd}, true
}

// requestSize shrinks requests as the unrequested bytes run out, so the
// last requests of every worker end at about the same time instead of one
// slow connection finishing a long request alone.
func (s *Scheduler) requestSize() int64 {
	var free, busy int64 // busy counts the asking worker: its owner is set
	for _, g := range s.segs {
		free += g.end - g.reqEnd
		if g.owner >= 0 {
			busy++
		}
	}
	return min(s.chunk, max(s.minSteal, free/(2*max(busy, 1))))
}

// owned returns w's segment if it still has unrequested bytes.
func (s *Scheduler) owned(w int) *seg {
	for _, g := range s.segs {
		if g.owner == w {
			if g.pos < g.end {
				return g
			}
			g.owner = -1
		}
	}
	return nil
}

// steal splits the largest unrequested run in two and returns the back half
// as a new segment. Requests in flight are never split: cutting one short
// would throw away the bytes already on their way.
func (s *Scheduler) steal() *seg {
	var victim *seg
	for _, g := range s.segs {
		if free := g.end - g.reqEnd; free >= 2*s.minSteal && (victim == nil || free > victim.end-victim.reqEnd) {
			victim = g
		}
	}
	if victim == nil {
		return nil
	}
	mid := victim.reqEnd + (victim.end-victim.reqEnd)/2
	g := &seg{pos: mid, claimed: mid, reqEnd: mid, end: victim.end, owner: -1}
	victim.end = mid
	i := slices.Index(s.segs, victim)
	s.segs = slices.Insert(s.segs, i+1, g)
	return g
}

// Claim reserves up to n more bytes of worker w's request for writing and
// returns how many it may write: never past the end of what it requested,
// so a server that sends more cannot overwrite another worker's bytes.
func (s *Scheduler) Claim(w int, n int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.segs {
		if g.owner == w && g.claimed < g.reqEnd {
			k := min(n, g.reqEnd-g.claimed)
			g.claimed += k
			return k
		}
	}
	return 0
}

// Advance records that worker w wrote n more bytes at the start of its
// requested range. They must have been claimed first; anything else is an
// error (a server that sent more than it was asked for).
func (s *Scheduler) Advance(w int, n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.segs {
		if g.owner == w && g.pos < g.reqEnd {
			if g.pos+n > g.claimed {
				return fmt.Errorf("segment: worker %d advanced %d bytes past what it claimed", w, g.pos+n-g.claimed)
			}
			g.pos += n
			return nil
		}
	}
	return fmt.Errorf("segment: worker %d has no request in flight", w)
}

// Release gives up w's in-flight request (it failed or was cancelled): the
// unfetched part becomes requestable again, by w or anyone.
func (s *Scheduler) Release(w int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.segs {
		if g.owner == w {
			g.reqEnd = g.pos
			g.claimed = g.pos
			g.owner = -1
		}
	}
}

// Missing returns the ranges not yet in place, merged and sorted: what a
// control file must remember.
func (s *Scheduler) Missing() []Range {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Range
	for _, g := range s.segs {
		if g.pos >= g.end {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End == g.pos {
			out[n-1].End = g.end
			continue
		}
		out = append(out, Range{g.pos, g.end})
	}
	return out
}

// Done is the number of bytes in place.
func (s *Scheduler) Done() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	done := s.size
	for _, g := range s.segs {
		done -= g.end - g.pos
	}
	return done
}

// Prefix is the length of the leading run of bytes in place: everything in
// [0, Prefix()) can be hashed in order.
func (s *Scheduler) Prefix() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.segs {
		if g.pos < g.end {
			return g.pos
		}
	}
	return s.size
}

// Complete reports whether every byte is in place.
func (s *Scheduler) Complete() bool { return s.Done() == s.size }

// Busy is the number of segments with a request in flight.
func (s *Scheduler) Busy() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, g := range s.segs {
		if g.owner >= 0 && g.pos < g.reqEnd {
			n++
		}
	}
	return n
}
