package download

import (
	"context"
	"net"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryhq/ferry/internal/tcpinfo"
)

// Connection renewal. On a path that drops packets at random (radio links,
// long lossy routes) rather than because a queue overflowed, a TCP sender
// halves its window at every loss and settles far below what the path
// carries: at 1% loss and 50 ms, cubic holds a connection near 0.3 MiB/s
// however fast the link. A new connection's slow start climbs well past that
// before the losses pull it down again. So when a worker's connection shows
// loss (packets arriving out of order) while the round trip stays at the
// path's least (no queue built up: the link is not full, and the losses are
// not congestion), the worker ends that connection after its request and
// fetches the next, shorter range on a new one. The worker count never
// grows; a full link, where losses come with a queue, keeps its connections.
const (
	// renewRequest bounds the requests of a worker renewing its
	// connections, and every worker's first: about what a new connection
	// carries before its window falls back on a 50 ms, 1% path.
	renewRequest = 1 << 20
	// renewMinSegs is the fewest segments a decision is based on.
	renewMinSegs = 64
	// renewMinRTT is the least path round trip renewal is for. Below it a
	// lossy connection recovers in moments anyway, and packets arriving out
	// of order are more likely reordered (several receive queues on a LAN
	// or loopback) than lost.
	renewMinRTT = 2 * time.Millisecond
	// sampleEvery spaces the kernel reads of a connection's counters.
	sampleEvery = 100 * time.Millisecond
)

// lossLimited reports whether a connection, between two snapshots, lost
// packets (at least 1 in 200 arrived out of order) while its round trip
// (peak, the most it was seen at in between) stayed within a fifth of base
// (plus a millisecond of scheduling noise) of the path's least. A queue
// that overflowed shows as a peak: the losses were congestion. A path
// whose least round trip is under renewMinRTT is never loss-limited.
func lossLimited(from, to tcpinfo.Info, peak, base time.Duration) bool {
	segs := to.SegsIn - from.SegsIn
	ooo := to.OutOfOrder - from.OutOfOrder
	if segs < renewMinSegs || ooo*200 < segs || (base > 0 && base < renewMinRTT) {
		return false
	}
	return base <= 0 || max(peak, to.RTT) <= base+base/5+time.Millisecond
}

// baseRTT is the least round trip any connection of a fetch has seen.
type baseRTT struct{ us atomic.Int64 }

func (b *baseRTT) observe(d time.Duration) time.Duration {
	us := d.Microseconds()
	for {
		cur := b.us.Load()
		if us <= 0 || (cur > 0 && cur <= us) {
			return time.Duration(cur) * time.Microsecond
		}
		if b.us.CompareAndSwap(cur, us) {
			return d
		}
	}
}

// holds counts the requests of one download on each connection, so that a
// worker ends a connection it is done with only while no other worker has
// taken it from the pool.
type holds struct {
	mu sync.Mutex
	n  map[net.Conn]int
}

func (h *holds) take(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[net.Conn]int{}
	}
	h.n[c]++
}

func (h *holds) drop(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n[c]--; h.n[c] <= 0 {
		delete(h.n, c)
	}
}

// closeIdle ends c unless a request holds it. A request that takes it from
// the pool right after finds it closed before writing a byte, which the
// transport retries on a new connection by itself.
func (h *holds) closeIdle(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c != nil && h.n[c] == 0 {
		c.Close()
	}
}

// connWatch follows the connection one request of a worker runs on.
type connWatch struct {
	holds  *holds
	mu     sync.Mutex
	conn   net.Conn
	from   tcpinfo.Info  // at the request's start; zero on a new connection
	last   tcpinfo.Info  // the latest snapshot
	peak   time.Duration // the largest round trip of the request's snapshots
	lastAt time.Time
	ok     bool // last is valid
}

// trace records the connection a request gets; release lets go of it
// when the request is over.
func (cw *connWatch) trace(ctx context.Context) context.Context {
	*cw = connWatch{holds: cw.holds}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			cw.mu.Lock()
			defer cw.mu.Unlock()
			if cw.holds != nil {
				if cw.conn != nil {
					cw.holds.drop(cw.conn) // the transport tried again elsewhere
				}
				cw.holds.take(info.Conn)
			}
			cw.conn = info.Conn
			if info.Reused {
				cw.from, _ = tcpinfo.Get(info.Conn)
			}
		},
	})
}

// release ends the request's hold on its connection.
func (cw *connWatch) release() {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.holds != nil && cw.conn != nil {
		cw.holds.drop(cw.conn)
	}
}

// end closes the request's connection if no other request has taken it:
// the next request then dials a new one.
func (cw *connWatch) end() {
	cw.mu.Lock()
	c := cw.conn
	cw.mu.Unlock()
	if cw.holds != nil {
		cw.holds.closeIdle(c)
	}
}

// sample reads the connection's counters, at most every sampleEvery unless
// final. Sampling as bytes arrive keeps a recent snapshot for a connection
// that the transport closes as soon as its last response ends.
func (cw *connWatch) sample(final bool) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if cw.conn == nil || (!final && time.Since(cw.lastAt) < sampleEvery) {
		return
	}
	cw.lastAt = time.Now()
	if info, ok := tcpinfo.Get(cw.conn); ok {
		cw.last, cw.ok = info, true
		cw.peak = max(cw.peak, info.RTT)
	}
}

// renewConn is the decision the workers use; tests replace it.
var renewConn = (*connWatch).renew

// renew decides after a request whether the worker should end the
// connection and fetch its next range on a new one.
func (cw *connWatch) renew(base *baseRTT) bool {
	cw.sample(true)
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if !cw.ok {
		return false
	}
	return lossLimited(cw.from, cw.last, cw.peak, base.observe(cw.last.MinRTT))
}
