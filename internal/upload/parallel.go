package upload

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/dialect"
	"github.com/ferryhq/ferry/internal/transfer"
)

// sendParallel uploads the file as tus partial uploads on up to Connections
// connections and concatenates them (tus concatenation extension). The
// first segment goes alone as a speed probe; later segments are cut to
// appendTarget worth at the measured speed. A failed segment goes back to
// the tail of the queue, keeping what the server acknowledged of it.
func (r *run) sendParallel(ctx context.Context) (stateFunc, error) {
	r.op = "upload"
	if r.st.Final != "" {
		r.res.Location = r.st.Final
		return r.finish, nil
	}
	p := &parallelUpload{r: r, conns: max(r.j.Connections, 1), seen: map[int]bool{}}
	p.cond = sync.NewCond(&p.mu)
	for i, s := range r.st.Segments {
		if !s.done() {
			p.queue = append(p.queue, i)
		}
	}
	done := p.acked()
	r.j.Meter.Reset(done, r.st.Size)
	r.resumedFrom = done
	if len(r.st.Segments) == 0 {
		// The probe: one segment alone, to learn the speed.
		if err := p.worker(ctx, true); err != nil {
			return nil, err
		}
	}
	// The probe had the link to itself; each of the connections that
	// follow gets about its share of it until they measure their own.
	p.speed.bytesPerSec /= float64(p.conns)
	p.share = (r.st.Size - r.st.Next + int64(p.conns) - 1) / int64(p.conns)
	err := p.run(ctx, p.conns)
	r.resumedFrom += p.found
	if err != nil {
		return nil, err
	}
	r.op = "concatenate"
	err = r.retrying(ctx, func(ctx context.Context) (bool, error) {
		loc, err := r.concat(ctx)
		if err != nil {
			return false, err
		}
		r.st.Final = loc
		return true, r.save()
	})
	if err != nil {
		return nil, err
	}
	r.res.Location = r.st.Final
	return r.finish, nil
}

// maxSegments bounds the segments of one upload, the probe included:
// servers cap the partial uploads one final upload may name (ferry serve:
// 1000), and the request that names them grows with their number.
const maxSegments = 1000

type parallelUpload struct {
	r     *run
	conns int
	share int64 // the most one segment may take: the rest split evenly
	found int64 // bytes the server held that the state did not know
	seen  map[int]bool
	mu    sync.Mutex
	cond  *sync.Cond
	queue []int // indexes of segments waiting to be (re)sent
	busy  int   // segments being sent
	err   error
	speed speed
}

// acked is the number of bytes the server acknowledged over all segments.
func (p *parallelUpload) acked() int64 {
	var n int64
	for _, s := range p.r.st.Segments {
		n += s.Offset
	}
	return n
}

func (p *parallelUpload) run(ctx context.Context, n int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := p.worker(ctx, false); err != nil {
				p.mu.Lock()
				if p.err == nil {
					p.err = err
					cancel(err)
				}
				p.cond.Broadcast()
				p.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if p.err != nil {
		return p.err
	}
	return context.Cause(ctx)
}

// take returns the next segment to send: a queued one, else a new one cut
// from the unsent tail. It waits while others are still sending (their
// segments may fail and come back) and returns -1 when all is sent.
func (p *parallelUpload) take() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := &p.r.st
	for {
		if p.err != nil {
			return -1
		}
		if len(p.queue) > 0 {
			i := p.queue[0]
			p.queue = p.queue[1:]
			p.busy++
			return i
		}
		if st.Next < st.Size {
			// Sized to the measured speed, but never so large that a
			// connection is left without a segment.
			left := st.Size - st.Next
			n := min(p.r.appendSize(&p.speed), left)
			if p.share > 0 {
				// After the probe: a segment is at most a connection's
				// share, and at least what keeps their number in bounds.
				n = min(max(min(n, p.share), (st.Size+maxSegments-2)/(maxSegments-1)), left)
			}
			if st.Size-(st.Next+n) < minAppend/2 {
				n = st.Size - st.Next // no runt segment at the end
			}
			st.Segments = append(st.Segments, Segment{Start: st.Next, End: st.Next + n})
			st.Next += n
			p.busy++
			return len(st.Segments) - 1
		}
		if p.busy == 0 {
			return -1
		}
		p.cond.Wait()
	}
}

func (p *parallelUpload) put(i int, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy--
	if failed {
		p.queue = append(p.queue, i)
	}
	p.cond.Broadcast()
}

// worker sends segments until none is left (or, for the probe, one).
func (p *parallelUpload) worker(ctx context.Context, probe bool) error {
	rt := p.r.j.Retrier()
	for {
		i := p.take()
		if i < 0 {
			return nil
		}
		progressed, err := p.send(ctx, i)
		p.put(i, err != nil)
		if err == nil {
			rt.Succeeded()
			if probe {
				return nil
			}
			continue
		}
		if errors.Is(err, errGone) {
			// The partial upload expired: it is made anew, which is worth
			// another try whatever the error says.
			err = &transfer.Transient{Err: err}
		}
		if err := rt.Failed(ctx, err, progressed); err != nil {
			return err
		}
	}
}

// send creates (or finds out how far the server got with) segment i and
// sends the rest of it in one append.
func (p *parallelUpload) send(ctx context.Context, i int) (progressed bool, err error) {
	r := p.r
	p.mu.Lock()
	s := r.st.Segments[i]
	p.mu.Unlock()
	n := s.End - s.Start
	if s.Location == "" {
		loc, err := r.create(ctx, n, true)
		if err != nil {
			return false, err
		}
		s.Location, s.Offset = loc, 0
		r.created(i)
		p.update(i, s)
	} else {
		off, err := r.offset(ctx, s.Location)
		if errors.Is(err, errGone) {
			// The partial upload expired: send the segment again.
			r.j.Meter.Found(-s.Offset)
			s.Location, s.Offset = "", 0
			p.update(i, s)
			return false, errGone
		}
		if err != nil {
			return false, err
		}
		if off > n {
			return false, errors.New("server holds more bytes of a segment than it has")
		}
		r.j.Meter.Found(off - s.Offset)
		p.mu.Lock()
		if !p.seen[i] && off > s.Offset {
			p.found += off - s.Offset // sent by an earlier run
		}
		p.seen[i] = true
		p.mu.Unlock()
		s.Offset = off
		p.update(i, s)
	}
	// The segment goes up in appends sized to the measured speed, so a
	// failure loses at most one append's worth: a server that checks each
	// append's digest keeps none of an append cut short.
	for s.Offset < n {
		p.mu.Lock()
		size := min(r.appendSize(&p.speed), n-s.Offset)
		p.mu.Unlock()
		t0 := time.Now()
		before := s.Offset
		off, err := r.appendAt(ctx, s.Location, s.Start, s.Offset, size, s.Offset+size == n)
		if err != nil {
			return progressed, err // what went out unacknowledged is not progress
		}
		p.mu.Lock()
		p.speed.observe(off-before, time.Since(t0))
		p.mu.Unlock()
		progressed = r.passed(i, off) || progressed
		s.Offset = off
		p.update(i, s)
	}
	return progressed, nil
}

// update stores segment i and saves the state.
func (p *parallelUpload) update(i int, s Segment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.r.st.Segments[i] = s
	p.r.save()
}

// concat creates the final upload from the partial ones, in file order.
func (r *run) concat(ctx context.Context) (string, error) {
	var parts []string
	for _, s := range r.st.Segments {
		u, err := url.Parse(s.Location)
		if err != nil {
			return "", err
		}
		parts = append(parts, u.RequestURI())
	}
	h := dialect.Tus.Header()
	h.Set("Upload-Concat", "final;"+strings.Join(parts, " "))
	h.Set("Upload-Metadata", r.metadata())
	if err := r.setReprDigest(h); err != nil {
		return "", err
	}
	return r.post(ctx, h)
}
