package ferry_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
)

// engines are the task kinds that reach a server, each run once against a
// URL: they must all classify a failure the same way.
var engines = []struct {
	name string
	run  func(t *testing.T, s *ferry.Session, url string) ([]ferry.Event, error)
}{
	{"download", func(t *testing.T, s *ferry.Session, url string) ([]ferry.Event, error) {
		_, events, err := download(t, s, ferry.DownloadRequest{URL: url, Path: filepath.Join(t.TempDir(), "f")})
		return events, err
	}},
	{"download x4", func(t *testing.T, s *ferry.Session, url string) ([]ferry.Event, error) {
		_, events, err := download(t, s, ferry.DownloadRequest{URL: url, Path: filepath.Join(t.TempDir(), "f"), Connections: 4})
		return events, err
	}},
	{"upload auto", func(t *testing.T, s *ferry.Session, url string) ([]ferry.Event, error) {
		path, _ := makeFile(t, 1000)
		_, events, err := runUpload(t, s, ferry.UploadRequest{URL: url, Path: path})
		return events, err
	}},
	{"upload tus", func(t *testing.T, s *ferry.Session, url string) ([]ferry.Event, error) {
		path, _ := makeFile(t, 1000)
		_, events, err := runUpload(t, s, ferry.UploadRequest{URL: url, Path: path, Protocol: ferry.ProtocolTus})
		return events, err
	}},
	{"upload ietf", func(t *testing.T, s *ferry.Session, url string) ([]ferry.Event, error) {
		path, _ := makeFile(t, 1000)
		_, events, err := runUpload(t, s, ferry.UploadRequest{URL: url, Path: path, Protocol: ferry.ProtocolIETF})
		return events, err
	}},
	{"upload multipart", func(t *testing.T, s *ferry.Session, url string) ([]ferry.Event, error) {
		path, _ := makeFile(t, 1000)
		_, events, err := runUpload(t, s, ferry.UploadRequest{URL: url, Path: path, Protocol: ferry.ProtocolMultipart})
		return events, err
	}},
	{"hls", func(t *testing.T, s *ferry.Session, url string) ([]ferry.Event, error) {
		return runTask(t, func(ctx context.Context) (*ferry.Task, error) {
			return s.HLS(ctx, ferry.HLSRequest{URL: url, Dir: t.TempDir()})
		})
	}},
	{"stream resumable", func(t *testing.T, s *ferry.Session, url string) ([]ferry.Event, error) {
		return runTask(t, func(ctx context.Context) (*ferry.Task, error) {
			st, err := s.Stream(ctx, ferry.StreamRequest{URL: url, Resumable: true})
			if err != nil {
				return nil, err
			}
			st.Write([]byte("some bytes"))
			st.Close()
			return st.Task, nil
		})
	}},
}

// runTask starts a task and collects its events until it ends.
func runTask(t *testing.T, start func(ctx context.Context) (*ferry.Task, error)) ([]ferry.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	task, err := start(ctx)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var events []ferry.Event
	for ev := range task.Events() {
		events = append(events, ev)
	}
	_, err = task.Wait(ctx)
	return events, err
}

// failingConfig retries quickly, at most attempts times in a row.
func failingConfig(attempts int) ferry.Config {
	cfg := testConfig(false)
	cfg.Ephemeral = true
	cfg.Retry = ferry.RetryPolicy{MaxAttempts: attempts, Initial: time.Millisecond, Max: 2 * time.Millisecond}
	return cfg
}

// closedPort is a loopback address nothing listens on: connecting to it
// is refused.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A name that does not exist, a certificate nobody trusts and a status
// that will not change fail at once, in every engine; a refused connection
// is retried until the policy gives up.
func TestPermanentFailuresFailAtOnce(t *testing.T) {
	const attempts = 3
	untrusted := httptest.NewUnstartedServer(http.NotFoundHandler())
	untrusted.Config.ErrorLog = quietLog() // the refused handshakes
	untrusted.StartTLS()
	defer untrusted.Close()
	for _, tc := range []struct {
		name    string
		url     func(t *testing.T) string
		cfg     func(cfg *ferry.Config)
		retries int
		is      func(err error) bool
	}{
		{
			name:    "connection refused",
			url:     func(t *testing.T) string { return "http://" + closedPort(t) + "/f" },
			retries: attempts - 1,
			is:      func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) },
		},
		{
			// RFC 6761 §6.4: names under .invalid never resolve.
			name: "unknown host",
			url:  func(t *testing.T) string { return "http://no-such-host.invalid/f" },
			is: func(err error) bool {
				dns, ok := errors.AsType[*net.DNSError](err)
				return ok && dns.IsNotFound
			},
		},
		{
			name: "redirect to another scheme",
			url:  func(t *testing.T) string { return redirectingTo(t, "file:///etc/passwd") },
			is:   func(err error) bool { return errors.Is(err, ferry.ErrUnsafeURL) },
		},
		{
			name: "redirect with credentials in the URL",
			url:  func(t *testing.T) string { return redirectingTo(t, "http://user:pw@127.0.0.1:1/f") },
			is:   func(err error) bool { return errors.Is(err, ferry.ErrUnsafeURL) },
		},
		{
			name: "unknown certificate authority",
			url:  func(t *testing.T) string { return untrusted.URL + "/f" },
			is: func(err error) bool {
				_, ok := errors.AsType[x509.UnknownAuthorityError](err)
				return ok
			},
		},
		{
			// The test certificate names 127.0.0.1 and example.com, not
			// localhost.
			name: "certificate for another name",
			url: func(t *testing.T) string {
				_, port, _ := net.SplitHostPort(untrusted.Listener.Addr().String())
				return "https://localhost:" + port + "/f"
			},
			cfg: func(cfg *ferry.Config) {
				pool := x509.NewCertPool()
				pool.AddCert(untrusted.Certificate())
				cfg.TLSConfig = &tls.Config{RootCAs: pool}
			},
			is: func(err error) bool {
				_, ok := errors.AsType[x509.HostnameError](err)
				return ok
			},
		},
	} {
		for _, e := range engines {
			t.Run(tc.name+"/"+e.name, func(t *testing.T) {
				cfg := failingConfig(attempts)
				if tc.cfg != nil {
					tc.cfg(&cfg)
				}
				events, err := e.run(t, mustSession(t, cfg), tc.url(t))
				if err == nil || !tc.is(err) {
					t.Fatalf("err = %v, want the %s", err, tc.name)
				}
				if got := count[ferry.RetryEvent](events); got != tc.retries {
					t.Errorf("%d retries, want %d (%v)", got, tc.retries, err)
				}
			})
		}
	}
}

// Statuses that say the request itself is wrong (RFC 9110 §15.5) end the
// task at its first answer; those that say "not now" are retried, but a
// multipart POST, which is not idempotent, only when the status says the
// server did not act on it: a 503 without Retry-After does not (see
// TestMultipart503RepeatedOnlyWithRetryAfter).
func TestStatusesRetriedOnlyWhenTheyMayPass(t *testing.T) {
	const attempts = 3
	for _, code := range []int{400, 401, 403, 404, 405, 410, 413, 415, 422, 451, 408, 425, 429, 500, 502, 503, 504} {
		for _, e := range engines {
			retryable := code == 408 || code == 425 || code == 429 || code >= 500
			if e.name == "upload multipart" {
				retryable = code == 408 || code == 425 || code == 429
			}
			t.Run(strconv.Itoa(code)+"/"+e.name, func(t *testing.T) {
				var hits atomic.Int32
				ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					w.WriteHeader(code)
				}))
				defer ts.Close()
				events, err := e.run(t, mustSession(t, failingConfig(attempts)), ts.URL+"/f")
				if err == nil {
					t.Fatalf("a %d succeeded", code)
				}
				se, ok := errors.AsType[*ferry.StatusError](err)
				if !ok || se.StatusCode != code {
					t.Fatalf("err = %v, want status %d", err, code)
				}
				want := 0
				if retryable {
					want = attempts - 1
				}
				if got := count[ferry.RetryEvent](events); got != want {
					t.Errorf("%d retries (%d requests), want %d: %v", got, hits.Load(), want, err)
				}
			})
		}
	}
}

// A multipart POST is repeated after a 503 only when the 503 comes with a
// Retry-After: a gateway's bare 503 (a proxy whose origin reset the
// connection) may follow an origin that acted on the request, while a
// Retry-After is the server saying when to send it again.
func TestMultipart503RepeatedOnlyWithRetryAfter(t *testing.T) {
	const attempts = 3
	for _, tc := range []struct {
		retryAfter string
		posts      int32
	}{{"", 1}, {"0", attempts}, {"Wed, 21 Oct 2015 07:28:00 GMT", attempts}} {
		t.Run("Retry-After "+strconv.Quote(tc.retryAfter), func(t *testing.T) {
			var posts atomic.Int32
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				posts.Add(1)
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			defer ts.Close()
			path, _ := makeFile(t, 1000)
			_, _, err := runUpload(t, mustSession(t, failingConfig(attempts)), ferry.UploadRequest{
				URL: ts.URL + "/form", Path: path, Protocol: ferry.ProtocolMultipart})
			if se, ok := errors.AsType[*ferry.StatusError](err); !ok || se.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("err = %v, want the 503", err)
			}
			if n := posts.Load(); n != tc.posts {
				t.Errorf("%d POSTs, want %d", n, tc.posts)
			}
		})
	}
}

// redirectingTo is a server that redirects every request to location.
func redirectingTo(t *testing.T, location string) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", location)
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(ts.Close)
	return ts.URL + "/f"
}
