package resumable

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// maxClients bounds the clients a creationLimiter remembers; past it,
// clients it has not seen share one allowance, so that a crowd of
// addresses cannot grow its memory without bound.
const maxClients = 16384

// creationLimiter allows each client (see clientKey) a burst of upload
// creations and then a steady rate: a token bucket per client, on the
// handler's clock.
type creationLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu       sync.Mutex
	buckets  map[netip.Prefix]*bucket
	overflow bucket    // shared by clients past maxClients
	pruned   time.Time // last removal of full buckets
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// newCreationLimiter returns a limiter of rate creations a second after a
// burst of burst, or nil (no limit) when rate is not positive.
func newCreationLimiter(rate float64, burst int, now func() time.Time) *creationLimiter {
	if rate <= 0 || math.IsNaN(rate) {
		return nil
	}
	return &creationLimiter{rate: rate, burst: float64(max(burst, 1)), now: now, buckets: map[netip.Prefix]*bucket{}}
}

// allow takes one creation from the allowance of r's client. When none is
// left it returns false and how long until one is.
func (l *creationLimiter) allow(r *http.Request) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	key := clientKey(r.RemoteAddr)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxClients {
			l.prune(now)
		}
		if len(l.buckets) >= maxClients {
			b = &l.overflow
		} else {
			b = &bucket{tokens: l.burst, at: now}
			l.buckets[key] = b
		}
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

func (l *creationLimiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
	}
	b.at = now
}

// prune forgets the clients whose allowance is whole again, at most once
// a second: a forgotten client starts again with a whole one.
func (l *creationLimiter) prune(now time.Time) {
	if now.Sub(l.pruned) < time.Second {
		return
	}
	l.pruned = now
	for k, b := range l.buckets {
		if l.refill(b, now); b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// clientKey names the client of a request by its address: an IPv4
// address, or the /64 network of an IPv6 one, since a single IPv6 host is
// commonly given a whole /64 to pick addresses from. (Addresses a proxy
// forwards are not trusted.)
func clientKey(remoteAddr string) netip.Prefix {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
