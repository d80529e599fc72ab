package resumable

import (
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ferryhq/ferry/server/internal/clientaddr"
)

// maxClients bounds the clients a creationLimiter remembers; past it,
// clients it has not seen share one allowance, so that a crowd of
// addresses cannot grow its memory without bound.
const maxClients = 16384

// creationLimiter allows each client (see clientaddr.Key) a burst of upload
// creations and then a steady rate: a token bucket (rate.Limiter) per
// client, on the handler's clock.
type creationLimiter struct {
	rate  float64 // creations a second
	burst int
	now   func() time.Time

	mu       sync.Mutex
	buckets  map[string]*rate.Limiter
	overflow *rate.Limiter // shared by clients past maxClients
	pruned   time.Time     // last removal of full buckets
}

// newCreationLimiter returns a limiter of r creations a second after a
// burst of burst, or nil (no limit) when r is not positive.
func newCreationLimiter(r float64, burst int, now func() time.Time) *creationLimiter {
	if !(r > 0) {
		return nil
	}
	burst = max(burst, 1)
	return &creationLimiter{
		rate: r, burst: burst, now: now,
		buckets:  map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(rate.Limit(r), burst),
	}
}

// allow takes one creation from the allowance of r's client. When none is
// left it returns false and how long until one is.
func (l *creationLimiter) allow(r *http.Request) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	key := clientaddr.Key(r.RemoteAddr)
	now := l.now()
	l.mu.Lock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxClients {
			l.prune(now)
		}
		b = l.overflow
		if len(l.buckets) < maxClients {
			b = rate.NewLimiter(rate.Limit(l.rate), l.burst)
			l.buckets[key] = b
		}
	}
	l.mu.Unlock()
	if b.AllowN(now, 1) {
		return true, 0
	}
	return false, time.Duration((1 - b.TokensAt(now)) / l.rate * float64(time.Second))
}

// prune forgets the clients whose allowance is whole again, at most once
// a second: a forgotten client starts again with a whole one.
func (l *creationLimiter) prune(now time.Time) {
	if now.Sub(l.pruned) < time.Second {
		return
	}
	l.pruned = now
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}
