package ferrytest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// A Server serves one resource over HTTP, with the faults chosen by its
// options. Create it with [NewServer]. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the base URL of the server, like "http://127.0.0.1:35471",
	// without a trailing slash. The resource is at URL+"/file"; any other
	// path except /healthz (and /redirect/k with [Redirect]) serves it
	// too.
	URL string

	cfg      *config
	ts       *httptest.Server
	client   *http.Client
	versions [2]*version
	closer   sync.Once

	mu       sync.Mutex
	requests []Request
	served   int // GETs that reached the resource
	retry    int // counts left for each fault
	status   int
	drop     int
	stall    int
	wrongCR  int
}

// version is one version of the resource.
type version struct {
	n            int
	data         content
	etag         string    // the ETag header as sent; "" when not sent
	lastModified time.Time // zero when not sent

	hashOnce sync.Once
	hash     string
}

// A Request is what the server saw of one request and what it answered.
type Request struct {
	Method         string
	Path           string // URL path, without the query
	Range          string // Range header, "" when absent
	IfRange        string // If-Range header
	AcceptEncoding string // Accept-Encoding header
	Proto          string // "HTTP/1.1" or "HTTP/2.0"

	// Status is the status code sent, or 0 while the response headers
	// have not been sent yet.
	Status int

	// BodyBytes counts the response body bytes handed to the connection
	// so far, as sent (compressed with GzipRanged). A byte the client has
	// received is always counted.
	BodyBytes int64
}

// NewServer starts a server with opts, serving one resource, and registers
// its Close with tb.Cleanup. Invalid options fail the test.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	cfg := defaultConfig()
	for _, o := range opts {
		o(cfg)
	}
	if len(cfg.errs) > 0 {
		tb.Fatalf("ferrytest.NewServer: %s", strings.Join(cfg.errs, "; "))
	}
	if cfg.changedSize < 0 {
		cfg.changedSize = cfg.size
	}
	s := &Server{
		cfg:     cfg,
		retry:   cfg.retryTimes,
		status:  cfg.statusTimes,
		drop:    cfg.dropTimes,
		stall:   cfg.stallTimes,
		wrongCR: cfg.wrongContentRange,
	}
	s.versions[0] = s.newVersion(1, cfg.size)
	s.versions[1] = s.newVersion(2, cfg.changedSize)

	var h http.Handler = http.HandlerFunc(s.route)
	for i := len(cfg.wrappers) - 1; i >= 0; i-- {
		h = cfg.wrappers[i](h)
	}
	s.ts = httptest.NewUnstartedServer(s.logRequests(h))
	switch {
	case cfg.tls:
		s.ts.EnableHTTP2 = true
		s.ts.StartTLS()
		s.client = s.ts.Client()
	case cfg.http2:
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		s.ts.Config.Protocols = &p
		s.ts.Start()
		var cp http.Protocols
		cp.SetUnencryptedHTTP2(true)
		s.client = &http.Client{Transport: &http.Transport{Protocols: &cp}}
	default:
		s.ts.Start()
		s.client = s.ts.Client()
	}
	s.URL = s.ts.URL
	tb.Cleanup(s.Close)
	return s
}

// lastModifiedBase is the Last-Modified time of version 0: far enough in the
// past that the Date header of every response is more than a second later,
// which makes the date a strong validator (RFC 9110 section 8.8.2.2).
var lastModifiedBase = time.Date(2024, time.March, 1, 12, 0, 0, 0, time.UTC)

func (s *Server) newVersion(n int, size int64) *version {
	v := &version{n: n, data: content{key: contentKey(s.cfg.seed, n), size: size}}
	if s.cfg.noValidators {
		return v
	}
	v.lastModified = lastModifiedBase.Add(time.Duration(n) * time.Hour)
	if s.cfg.lastModifiedOnly {
		return v
	}
	tag := fmt.Sprintf("v%d-%016x", n, v.data.key)
	if s.cfg.etag != "" {
		tag = s.cfg.etag
		if n > 1 {
			tag = fmt.Sprintf("%s-v%d", tag, n)
		}
	}
	v.etag = `"` + tag + `"`
	if s.cfg.weakETag {
		v.etag = "W/" + v.etag
	}
	return v
}

// current returns the version served now. s.mu must be held.
func (s *Server) current() *version {
	if s.cfg.changeAfter >= 0 && s.served >= s.cfg.changeAfter {
		return s.versions[1]
	}
	return s.versions[0]
}

func (s *Server) currentVersion() *version {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current()
}

// Client returns an HTTP client for the server: it trusts the certificate of
// a [TLS] server and speaks only h2c to an [HTTP2] one. It follows redirects
// like any [http.Client].
func (s *Server) Client() *http.Client { return s.client }

// Size returns the size of the version of the resource served now.
func (s *Server) Size() int64 { return s.currentVersion().data.size }

// SHA256 returns the lowercase hex SHA-256 digest of the version of the
// resource served now. It is computed on first use (reading the whole
// content) and cached.
func (s *Server) SHA256() string {
	v := s.currentVersion()
	v.hashOnce.Do(func() { v.hash = v.data.sha256Hex() })
	return v.hash
}

// ETag returns the ETag header of the version of the resource served now,
// quotes (and W/ prefix) included, or "" if none is sent.
func (s *Server) ETag() string { return s.currentVersion().etag }

// LastModified returns the Last-Modified time of the version of the resource
// served now, or the zero time if none is sent.
func (s *Server) LastModified() time.Time { return s.currentVersion().lastModified }

// Version returns the version of the resource served now: 1, or 2 after the
// change made by [ChangeETagAfter].
func (s *Server) Version() int { return s.currentVersion().n }

// Content returns the bytes of version 1 or 2 of the resource (see
// [ChangeETagAfter]). ReadAt at any offset is cheap and returns io.EOF at
// the end. Content panics for any other version.
func (s *Server) Content(version int) io.ReaderAt {
	if version != 1 && version != 2 {
		panic(fmt.Sprintf("ferrytest: Content(%d): versions are 1 and 2", version))
	}
	return s.versions[version-1].data
}

// Requests returns a copy of the log of every request the server has
// received so far, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Close shuts the server down: it closes every connection, including those
// with a response in progress, and waits for the handlers to return. Close
// may be called more than once; [NewServer] registers it with Cleanup.
func (s *Server) Close() {
	s.closer.Do(func() {
		if t, ok := s.client.Transport.(interface{ CloseIdleConnections() }); ok {
			t.CloseIdleConnections()
		}
		// httptest.Server.Close waits for active connections, and an
		// HTTP/2 connection stays active while it is open, so cut them.
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// take uses up one of the counts left in *n, reporting whether there was one.
func (s *Server) take(n *int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *n <= 0 {
		return false
	}
	*n--
	return true
}

// sleep waits for d or until ctx is done, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
