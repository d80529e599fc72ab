package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/server/internal/clientaddr"
	"github.com/ferryhq/ferry/server/stream"
)

// Defaults for the limits on request content (see Config).
const (
	DefaultBodyIdleTimeout     = 60 * time.Second
	DefaultStreamIdleTimeout   = 5 * time.Minute
	DefaultMaxUploadsPerClient = 32
)

// ErrBodyIdle is what a handler's read of request content returns (wrapping
// os.ErrDeadlineExceeded too) when no byte of it arrived for the idle
// timeout: the client stalled, or trickles its content to hold the
// connection. The connection is then closed.
var ErrBodyIdle = errors.New("server: no request content arrived within the idle timeout")

// Every request that carries content goes through guardBody, in ServeHTTP:
// uploads, appends, forms, streams, and any other request with a body, such
// as a GET whose content nobody reads (net/http still drains up to 256 KiB
// of it after the handler). One mechanism owns the connection's read
// deadline for the request, so that the handlers' own use of it (taking a
// stalled upload or stream over sets the deadline to now) and the idle
// timeout never undo each other.

// bodyGuard keeps a request's read deadline: the idle deadline, pushed back
// before every read of the content, and whatever deadline the handler set
// through http.ResponseController, whichever comes first.
type bodyGuard struct {
	rc   *http.ResponseController // of the writer below the guard
	idle time.Duration
	now  func() time.Time // the clock of deadlines on the connection: time.Now

	mu      sync.Mutex
	handler time.Time // the handler's deadline; zero: none
	done    bool      // the content has ended: only the handler's applies
}

// guardBody puts r's content under the idle timeout idle and returns the
// writer and request the handler gets. The first deadline starts at once,
// so content that is never read is bounded too. now tells the time
// deadlines are set in: the connection's, time.Now, as a handler's own
// deadlines are.
func guardBody(w *logWriter, r *http.Request, idle time.Duration, now func() time.Time) (http.ResponseWriter, *http.Request) {
	g := &bodyGuard{rc: http.NewResponseController(w), idle: idle, now: now}
	g.apply()
	r.Body = &guardedBody{ReadCloser: r.Body, g: g}
	return &guardWriter{logWriter: w, g: g}, r
}

// apply sets the connection's deadline; the caller holds g.mu or has g to
// itself.
func (g *bodyGuard) apply() error {
	d := g.handler
	if !g.done {
		if idle := g.now().Add(g.idle); d.IsZero() || idle.Before(d) {
			d = idle
		}
	}
	return g.rc.SetReadDeadline(d)
}

// extend pushes the idle deadline back, before a read.
func (g *bodyGuard) extend() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.done {
		g.apply()
	}
}

// finish lifts the idle deadline once the content has ended: on HTTP/1.1
// net/http then reads the connection in the background to notice a client
// going away, and an idle deadline left in place would end the request.
func (g *bodyGuard) finish() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.done {
		g.done = true
		g.apply()
	}
}

// setHandlerDeadline records a deadline the handler asked for.
func (g *bodyGuard) setHandlerDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.handler = t
	return g.apply()
}

// idleFailure reports whether a deadline error came from the idle timeout
// rather than from the handler's own deadline.
func (g *bodyGuard) idleFailure() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.handler.IsZero() || g.now().Before(g.handler)
}

// guardedBody is request content read under its guard.
type guardedBody struct {
	io.ReadCloser
	g *bodyGuard
}

func (b *guardedBody) Read(p []byte) (int, error) {
	b.g.extend()
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.g.finish()
	case errors.Is(err, os.ErrDeadlineExceeded) && b.g.idleFailure():
		err = fmt.Errorf("%w (%v): %w", ErrBodyIdle, b.g.idle, err)
	}
	return n, err
}

// guardWriter is the writer of a request with content: its read deadline is
// the guard's to keep. It keeps logWriter's other methods (ReadFrom, Flush,
// Unwrap) for http.ResponseController.
type guardWriter struct {
	*logWriter
	g *bodyGuard
}

// SetReadDeadline is what http.ResponseController calls.
func (w *guardWriter) SetReadDeadline(t time.Time) error { return w.g.setHandlerDeadline(t) }

// hasBody reports whether r carries content. (Over HTTP/2 the Body is never
// http.NoBody; a request without content there has ContentLength 0.)
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// bodyIdle returns the idle timeout for r's content, 0 for none: a live
// stream has one of its own, since its producer may pause.
func (s *Server) bodyIdle(r *http.Request) time.Duration {
	if s.streams != nil && strings.HasPrefix(r.URL.Path, stream.DefaultBasePath) {
		return s.streamIdle
	}
	return s.bodyIdleTimeout
}

// clientLimiter bounds the requests with content in flight per client
// address. IPv6 clients count per /64, the block one subscriber usually has.
type clientLimiter struct {
	max int // ≤ 0: no bound

	mu sync.Mutex
	n  map[string]int
}

func newClientLimiter(max int) *clientLimiter {
	return &clientLimiter{max: max, n: map[string]int{}}
}

// acquire counts one more request from remote (a RemoteAddr), or reports
// false when that address has max already. release undoes it.
func (l *clientLimiter) acquire(remote string) (release func(), ok bool) {
	if l.max <= 0 {
		return func() {}, true
	}
	key := clientaddr.Key(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[key] >= l.max {
		return nil, false
	}
	l.n[key]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.n[key]--; l.n[key] <= 0 {
			delete(l.n, key)
		}
	}, true
}
