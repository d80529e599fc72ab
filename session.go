package ferry

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/auth"

	"golang.org/x/time/rate"

	"github.com/ferryhq/ferry/internal/transfer"
)

// Session creates and tracks tasks that share one configuration, one
// connection pool and one bandwidth budget, like a URLSession. Its methods
// are safe for concurrent use.
type Session struct {
	cfg     Config
	client  *http.Client
	limiter *rate.Limiter
	slots   *hostSlots

	bg *background // a background session's link to the daemon

	proxy      func(*http.Request) (*url.URL, error) // the transport's, nil for a Config.Transport
	cookies    *CookieJar                            // nil: none
	cookieFile string                                // where the session keeps its own cookies; "": nowhere

	mu     sync.Mutex
	tasks  []*Task
	nextID int
	closed bool
}

// NewSession returns a session configured by cfg, or an error if cfg holds
// an invalid value.
func NewSession(cfg Config) (*Session, error) {
	if cfg.RateLimit < 0 || cfg.MinSpeed < 0 || cfg.MaxConnsPerHost < 0 {
		return nil, fmt.Errorf("%w: negative RateLimit, MinSpeed or MaxConnsPerHost", ErrInvalidConfig)
	}
	cfg = cfg.resolved()
	s := &Session{cfg: cfg, slots: &hostSlots{max: cfg.MaxConnsPerHost}}
	rt := cfg.Transport
	if rt == nil {
		s.proxy = s.pickProxy()
		rt = newTransport(cfg, s.proxy)
	}
	lookup, err := s.authLookup()
	if err != nil {
		return nil, err
	}
	if lookup != nil {
		rt = &auth.Transport{Base: rt, Lookup: lookup}
	}
	s.client = &http.Client{Transport: rt, CheckRedirect: transfer.CheckRedirect}
	if err := s.openCookies(); err != nil {
		return nil, err
	}
	if cfg.RateLimit > 0 {
		s.limiter = newLimiter(cfg.RateLimit)
	}
	if cfg.Background != "" {
		s.cfg.ResourceTimeout = -1 // the daemon's tasks are not this program's to time out
		if err := s.attach(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// openCookies gives the session its cookie store, as Config says.
func (s *Session) openCookies() error {
	cfg := s.cfg
	switch {
	case cfg.NoCookies || cfg.Background != "":
		return nil
	case cfg.Cookies != nil:
		s.cookies = cfg.Cookies
	case cfg.Ephemeral:
		s.cookies = NewCookieJar()
	default:
		s.cookieFile = filepath.Join(cfg.StateDir, "cookies.txt")
		jar, err := loadOwnCookies(s.cookieFile)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
		s.cookies = jar
	}
	s.client.Jar = s.cookies
	return nil
}

// Cookies returns the session's cookie store; nil when it keeps none.
func (s *Session) Cookies() *CookieJar { return s.cookies }

// keepCookies writes the session's own cookies to its state directory
// when they changed. A failure is not the task's: the cookies stay in
// memory, and the next task tries again.
func (s *Session) keepCookies() {
	if s.cookieFile != "" {
		s.cookies.saveIfChanged(s.cookieFile)
	}
}

func newTransport(cfg Config, proxy func(*http.Request) (*url.URL, error)) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               proxy,
		DialContext:         dialer.DialContext,
		TLSClientConfig:     cfg.TLSConfig,
		TLSHandshakeTimeout: cfg.ConnectTimeout,
		MaxConnsPerHost:     cfg.MaxConnsPerHost,
		MaxIdleConnsPerHost: cfg.MaxConnsPerHost,
		IdleConnTimeout:     90 * time.Second,
		// Bytes are stored as served: a transparent gunzip would make ranges
		// and sizes meaningless (RFC 9110 §14.2 ranges are of the encoded form).
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
		ReadBufferSize:     128 << 10,
		WriteBufferSize:    64 << 10,
	}
	if cfg.IdleTimeout > 0 {
		// A request's watchdog ends a stalled HTTP/2 stream, but not the
		// connection under it, which the retry would use again: a
		// connection silent for half the idle timeout is pinged, and
		// closed when the ping goes unanswered as long again.
		tr.HTTP2 = &http.HTTP2Config{SendPingTimeout: cfg.IdleTimeout / 2, PingTimeout: cfg.IdleTimeout / 2}
	}
	if cfg.HTTP2PriorKnowledge {
		p := new(http.Protocols)
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = p
	}
	return tr
}

// Config returns the session's configuration with defaults filled in.
func (s *Session) Config() Config { return s.cfg }

// Tasks returns the session's tasks in creation order.
func (s *Session) Tasks() []*Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Task(nil), s.tasks...)
}

// Forget drops a completed task from the session's list, so that a
// long-lived session (a daemon, a server) does not keep every task it ever
// ran. It reports false, and keeps the task, if it has not completed.
func (s *Session) Forget(t *Task) bool {
	if t.State() != StateCompleted {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.tasks {
		if x == t {
			s.tasks = append(s.tasks[:i], s.tasks[i+1:]...)
			break
		}
	}
	return true
}

// Task returns the task with the given ID, or nil.
func (s *Session) Task(id string) *Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tasks {
		if t.id == id {
			return t
		}
	}
	return nil
}

func (s *Session) add(t *Task) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrSessionClosed
	}
	s.nextID++
	t.id = strconv.Itoa(s.nextID)
	if w, ok := t.work.(*bgWork); ok {
		t.id = w.id // the daemon's, the same in every process
	}
	s.tasks = append(s.tasks, t)
	return nil
}

// Shutdown stops accepting tasks and waits for the running ones to finish
// (URLSession's finishTasksAndInvalidate). Suspended tasks end with
// ErrCanceled but keep their files, since nothing would resume them in this
// session; the same request continues them later. If ctx ends first, Close
// stops the remaining tasks and ctx's error is returned.
func (s *Session) Shutdown(ctx context.Context) error {
	tasks := s.invalidate()
	for _, t := range tasks {
		t.stopIfSuspended()
	}
	for _, t := range tasks {
		select {
		case <-t.Done():
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		}
	}
	s.client.CloseIdleConnections()
	s.keepCookies()
	if s.bg != nil {
		s.bg.close()
	}
	return nil
}

// Close stops every task at once and waits for them (URLSession's
// invalidateAndCancel). Tasks end with ErrCanceled and keep what they
// fetched, like a cancelled context: running the same download again, or
// from its control file, continues it. Task.Cancel is the way to stop a task
// and delete its files. Event channels not drained by then are closed.
//
// A background session's tasks go on in the daemon: Close only lets go of
// the session's identifier (CancelAll cancels them).
func (s *Session) Close() error {
	tasks := s.invalidate()
	for _, t := range tasks {
		t.stop(intentCancelKeep)
	}
	for _, t := range tasks {
		<-t.Done()
		t.events.abandon()
	}
	s.client.CloseIdleConnections()
	s.keepCookies()
	if s.bg != nil {
		s.bg.close()
	}
	return nil
}

// CancelAll cancels every unfinished task of the session, deleting what
// they fetched; for a background session, in the daemon too, including
// tasks this program has not seen.
func (s *Session) CancelAll() error {
	s.mu.Lock()
	tasks := append([]*Task(nil), s.tasks...)
	s.mu.Unlock()
	for _, t := range tasks {
		t.Cancel()
	}
	for _, t := range tasks {
		<-t.Done()
	}
	if s.bg != nil {
		return s.bg.c.CloseSession(context.Background(), s.bg.id, true)
	}
	return nil
}

func (s *Session) invalidate() []*Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return append([]*Task(nil), s.tasks...)
}

// hostSlots caps the requests in flight per host across the session's
// tasks: MaxConnsPerHost bounds connections in the transport, and this
// bounds HTTP/2 streams too, which all share one connection.
type hostSlots struct {
	max int
	mu  sync.Mutex
	sem map[string]chan struct{}
}

func (h *hostSlots) Acquire(ctx context.Context, host string) (func(), error) {
	h.mu.Lock()
	if h.sem == nil {
		h.sem = map[string]chan struct{}{}
	}
	sem, ok := h.sem[host]
	if !ok {
		sem = make(chan struct{}, h.max)
		h.sem[host] = sem
	}
	h.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
