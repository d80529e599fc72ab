package download

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/segment"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

const (
	// minAdaptiveSize is the smallest file the adaptive default splits; a
	// smaller one is over before extra connections would pay off.
	minAdaptiveSize = 8 << 20
	// minFixedSize is the smallest file split when connections are asked for.
	minFixedSize = 2 << 20
	// maxRequest and minRequest bound one ranged request. Bounded requests
	// let a finished worker steal the unrequested rest of a slow one's
	// segment without cutting a connection.
	maxRequest = 16 << 20
	minRequest = 512 << 10
	// checkpointEvery is how often the map of fetched ranges is made
	// durable: a kill loses at most this much transfer per connection.
	checkpointEvery = time.Second
	// adaptEvery is how often the adaptive default measures throughput.
	adaptEvery = time.Second
	// startConnections is where the adaptive default starts.
	startConnections = 2
)

// restartError ends a segmented fetch because the bytes held cannot be kept:
// the resource changed, or the server stopped honouring ranges.
type restartError struct {
	reason   string
	noRanges bool
}

func (e *restartError) Error() string { return "restart: " + e.reason }

// segmentable reports whether to fetch with parallel ranged requests: the
// size is known, ranges are served, a strong validator guards every range,
// and the file is big enough for more connections to pay off.
func (r *run) segmentable() bool {
	if r.st.Missing != nil {
		return true // an earlier run's layout: continue it
	}
	if r.j.Connections == 1 || r.j.Stream != nil || r.fullOnly || !r.probe.ranges || r.st.Validator.IfRange() == "" {
		return false
	}
	least := int64(minAdaptiveSize)
	if r.j.Connections > 1 {
		least = minFixedSize
	}
	return r.st.Size >= least && r.st.Size-r.offset >= least/2
}

// fetchSegmented fetches the missing ranges over several connections.
func (r *run) fetchSegmented(ctx context.Context) (stateFunc, error) {
	r.op = "download"
	if r.st.Missing == nil {
		// Switch to the segmented layout: the bytes held so far stay and
		// the rest is missing. The map is saved before the file grows:
		// a kill in between must never leave a full-length file that a
		// later run, finding no map, would take for a finished one.
		r.st.Missing = []segment.Range{{Start: r.offset, End: r.st.Size}}
		if err := r.j.Saved.Save(&r.st); err != nil {
			return nil, err
		}
	}
	// The file takes its full length, so ranges can land anywhere.
	if fi, err := r.part.Stat(); err != nil || fi.Size() < r.st.Size {
		if err := preallocate(r.part, r.st.Size); err != nil {
			return nil, &writeError{err}
		}
	}
	limit := r.j.Connections
	if limit <= 1 {
		limit = max(r.j.MaxConnections, 1)
	}
	sched, err := segment.New(r.st.Size, r.st.Missing, requestSize(r.st.Size, limit), minRequest)
	if err != nil {
		// A map that does not fit the file: nothing in it can be trusted.
		return r.probeState, r.restart("the saved map of fetched ranges is invalid")
	}
	done := sched.Done()
	r.j.Meter.Reset(done, r.st.Size)
	r.resumed(done)
	r.offset = r.st.Size
	start := limit
	if r.j.Connections <= 1 {
		start = min(startConnections, limit)
	}
	p := &parallel{r: r, sched: sched, limit: limit, adaptive: r.j.Connections <= 1}
	err = p.run(ctx, start)
	r.st.Missing = sched.Missing()
	if proto := p.proto.Load(); proto != nil {
		r.res.Proto = *proto
	}
	if err == nil {
		return r.commit, nil
	}
	var re *restartError
	if !errors.As(err, &re) || ctx.Err() != nil {
		return nil, err
	}
	r.restarts++
	if r.j.Retry.Exhausted(r.restarts) {
		return nil, fmt.Errorf("giving up after %d restarts: %s", r.restarts, re.reason)
	}
	if re.noRanges {
		r.fullOnly = true
	}
	if err := r.restart(re.reason); err != nil {
		return nil, err
	}
	return r.probeState, nil
}

// requestSize picks the largest request for a file fetched by n workers:
// half a worker's share, within [minRequest, maxRequest]. Fewer, longer
// requests keep each connection's congestion window busy (on a lossy link
// the end of every response risks a retransmission timeout); the
// scheduler still shrinks requests as the unrequested bytes run out, so
// the connections finish together.
func requestSize(size int64, n int) int64 {
	return min(maxRequest, max(minRequest, size/int64(2*max(n, 1))))
}

// parallel runs the workers of one segmented fetch.
type parallel struct {
	r        *run
	sched    *segment.Scheduler
	limit    int
	adaptive bool

	mu      sync.Mutex
	started int
	wg      sync.WaitGroup
	cancel  context.CancelCauseFunc
	errOnce sync.Once
	err     error
	bad     atomic.Int32 // consecutive answers that did not match their request
	proto   atomic.Pointer[string]
	base    baseRTT
	holds   holds
	// lossy is set once a worker found the path loss-limited (renew.go):
	// each connection is held down by random loss, not by a full link, so
	// another one adds throughput.
	lossy atomic.Bool
}

func (p *parallel) run(ctx context.Context, n int) error {
	ctx, p.cancel = context.WithCancelCause(ctx)
	defer p.cancel(nil)
	p.sched.Split(n)
	for range n {
		p.spawn(ctx)
	}
	var aux sync.WaitGroup
	auxCtx, stopAux := context.WithCancel(ctx)
	aux.Go(func() { p.checkpoints(auxCtx) })
	if len(p.r.sums.hashes) > 0 {
		aux.Go(func() { p.hashPrefix(auxCtx) })
	}
	if p.adaptive {
		aux.Go(func() { p.adapt(auxCtx) })
	}
	p.wg.Wait()
	stopAux()
	aux.Wait()
	if err := p.r.checkpoint(p.sched); err != nil && p.err == nil {
		return err
	}
	if p.err != nil {
		return p.err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if !p.sched.Complete() {
		return errors.New("segmented fetch ended with bytes missing")
	}
	return nil
}

// spawn starts one more worker unless the limit is reached.
func (p *parallel) spawn(ctx context.Context) bool {
	p.mu.Lock()
	if p.started >= p.limit {
		p.mu.Unlock()
		return false
	}
	w := p.started
	p.started++
	p.mu.Unlock()
	p.wg.Go(func() {
		if err := p.worker(ctx, w); err != nil {
			p.errOnce.Do(func() {
				p.err = err
				p.cancel(err)
			})
		}
	})
	return true
}

// adapt adds a connection each interval while the total rate still rises
// by a tenth, and stops after two intervals without such a rise. On a
// path found loss-limited it adds one each interval up to the cap: there
// the rate is noisy (connections are renewed) and every flow adds its own
// share.
func (p *parallel) adapt(ctx context.Context) {
	t := time.NewTicker(adaptEvery)
	defer t.Stop()
	lastMoved, lastT := p.r.j.Meter.Moved(), time.Now()
	best, flat := 0.0, 0
	for flat < 2 {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			moved := p.r.j.Meter.Moved()
			rate := float64(moved-lastMoved) / now.Sub(lastT).Seconds()
			lastMoved, lastT = moved, now
			if p.lossy.Load() {
				flat = 0
				if !p.spawn(ctx) {
					return
				}
				continue
			}
			if rate <= best*1.1 {
				flat++
				continue
			}
			best, flat = rate, 0
			if !p.spawn(ctx) {
				return
			}
		}
	}
}

// checkpoints makes the map of fetched ranges durable every interval.
func (p *parallel) checkpoints(ctx context.Context) {
	every(ctx, checkpointEvery, func() { p.r.checkpoint(p.sched) })
}

// every calls f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// checkpoint fsyncs the .part file, then saves the map: the map never claims
// bytes that a power loss could take back.
func (r *run) checkpoint(sched *segment.Scheduler) error {
	missing := sched.Missing()
	if err := r.part.Sync(); err != nil {
		return &writeError{err}
	}
	st := r.st
	st.Missing = missing
	if st.Missing == nil {
		st.Missing = []segment.Range{}
	}
	return r.j.Saved.Save(&st)
}

// hashPrefix hashes the file in order as its leading run of fetched bytes
// grows, so the digest is mostly done when the last byte arrives.
func (p *parallel) hashPrefix(ctx context.Context) {
	every(ctx, 100*time.Millisecond, func() { p.r.sums.catchUp(p.r.part, p.sched.Prefix()) })
}

// worker fetches ranges until none is left, retrying its own failures.
// Its first request is short, so that whether to renew connections (see
// renew.go) is known early.
func (p *parallel) worker(ctx context.Context, w int) error {
	r := p.r
	buf := make([]byte, 256<<10)
	rt := r.j.Retrier()
	cw := connWatch{holds: &p.holds}
	first, renew := true, false
	for {
		var most int64
		if first || renew {
			most = renewRequest
		}
		rg, ok := p.sched.NextUpTo(w, most)
		if !ok {
			return nil
		}
		n, http1, err := p.fetchRange(ctx, w, rg, buf, &cw, renew)
		cw.release()
		if err == nil {
			rt.Succeeded()
			p.bad.Store(0)
			startWriteback(r.part, rg.Start, rg.Len())
			first = false
			was := renew
			renew = http1 && renewConn(&cw, &p.base)
			if renew {
				p.lossy.Store(true)
			}
			if renew && !was {
				// Kept alive by its request: end it, unless another
				// worker took it from the pool already (then the next
				// request, asking to end its connection, does).
				cw.end()
			}
			continue
		}
		p.sched.Release(w)
		if _, ok := errors.AsType[*restartError](err); ok {
			return err
		}
		// Every byte a worker writes is new, so any is progress.
		if err := rt.Failed(ctx, err, n > 0); err != nil {
			return err
		}
	}
}

// fetchRange requests rg and writes what arrives in place, advancing the
// scheduler as it goes, and watching its connection through cw; closeAfter
// asks for a connection of its own, ended with the response. It returns the
// bytes written and whether the answer came over HTTP/1 (a connection of
// the worker's own).
func (p *parallel) fetchRange(ctx context.Context, w int, rg segment.Range, buf []byte, cw *connWatch, closeAfter bool) (int64, bool, error) {
	r := p.r
	var n int64
	var http1 bool
	err := r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
		x, err := r.newRequest(actx, http.MethodGet, wd)
		if err != nil {
			return err
		}
		x.Req = x.Req.WithContext(cw.trace(x.Req.Context()))
		x.Req.Close = closeAfter
		x.Req.Header.Set("Range", httprange.Range(rg.Start, rg.End-1))
		x.Req.Header.Set("If-Range", r.st.Validator.IfRange())
		resp, err := x.Do()
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		p.proto.Store(&resp.Proto)
		http1 = resp.ProtoMajor == 1
		got := httprange.FromResponse(resp.Header)
		switch resp.StatusCode {
		case http.StatusPartialContent:
			_, err := send.Partial(resp, send.Want{First: rg.Start, Last: rg.End - 1, Size: r.st.Size, Validator: r.st.Validator})
			if errors.Is(err, send.ErrOtherVersion) {
				x.Finish(0, nil)
				return &restartError{reason: "the resource changed (a range came from another version)"}
			}
			if err != nil {
				x.Finish(0, transfer.ErrBadContentRange)
				if p.bad.Add(1) >= 3 {
					return &restartError{reason: "the server's ranges do not match the requests", noRanges: true}
				}
				return transfer.ErrBadContentRange
			}
		case http.StatusOK:
			x.Finish(0, nil)
			if got.Same(r.st.Validator) {
				return &restartError{reason: "the server stopped serving ranges", noRanges: true}
			}
			return &restartError{reason: "the resource changed (If-Range failed)"}
		case http.StatusRequestedRangeNotSatisfiable:
			x.Finish(0, nil)
			return &restartError{reason: "the resource is shorter than it was"}
		default:
			se := transfer.ResponseError(resp)
			x.Finish(0, se)
			return se
		}
		pos := rg.Start
		n, err = x.Pump(actx, resp, resp.Body, resp.ContentLength, buf, func(b []byte) error {
			if pos+int64(len(b)) > rg.End {
				return transfer.ErrBadContentRange // more than was asked for
			}
			// Claim before writing: never past the end of the request.
			k := p.sched.Claim(w, int64(len(b)))
			if k < int64(len(b)) {
				return transfer.ErrBadContentRange
			}
			if _, err := r.part.WriteAt(b, pos); err != nil {
				return &writeError{err}
			}
			pos += k
			r.j.Meter.Add(k)
			cw.sample(false)
			return p.sched.Advance(w, k)
		})
		if err == nil && n != rg.Len() {
			err = transfer.ErrShortBody
		}
		x.Finish(n, err)
		return err
	})
	return n, http1, err
}
