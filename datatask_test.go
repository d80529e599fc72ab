package ferry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// echo answers every request with its method, body and chosen header
// fields; /status/N answers N, /big a body of 1 MiB, /flaky 503 with
// Retry-After: 0 the first `flaky` times.
type echo struct {
	mu    sync.Mutex
	flaky int
	seen  []string // method and body of each request, in order
}

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.seen = append(e.seen, r.Method+" "+string(body))
	flaky := e.flaky > 0
	if flaky && r.URL.Path == "/flaky" {
		e.flaky--
	}
	e.mu.Unlock()
	switch {
	case r.URL.Path == "/big":
		w.Write(bytes.Repeat([]byte("x"), 1<<20))
		return
	case strings.HasPrefix(r.URL.Path, "/status/"):
		var code int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/status/"), &code)
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d", code)
		return
	case r.URL.Path == "/order":
		http.Redirect(w, r, "/status/429", http.StatusSeeOther)
		return
	case r.URL.Path == "/order-gone":
		http.Redirect(w, r, closedURL, http.StatusSeeOther)
		return
	case r.URL.Path == "/flaky" && flaky:

		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Content-Length", fmt.Sprint(r.ContentLength))
	w.Header().Set("X-Agent", r.Header.Get("User-Agent"))
	w.Header().Set("X-Token", r.Header.Get("X-Token"))
	if r.Method == http.MethodHead {
		// The length a GET would have: a HEAD's body is none.
		w.Header().Set("Content-Length", "42")
		return
	}
	w.Write(body)
}

func (e *echo) requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen...)
}

// closedURL is a URL nothing listens at.
var closedURL = func() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String() + "/"
}()

// echoServer serves an echo over HTTP/1.1 or h2c.
func echoServer(t *testing.T, h2 bool, e *echo) string {
	t.Helper()
	return newServer(t, h2, ferrytest.Handler(func(http.Handler) http.Handler { return e })).URL
}

func runData(t *testing.T, s *ferry.Session, req ferry.DataRequest) (*ferry.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	task, err := s.Data(ctx, req)
	if err != nil {
		t.Fatalf("Data: %v", err)
	}
	return task.Wait(ctx)
}

func TestDataTask(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		e := &echo{}
		url := echoServer(t, h2, e)
		s := mustSession(t, testConfig(h2))
		file := filepath.Join(t.TempDir(), "body")
		if err := os.WriteFile(file, []byte("from a file"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name       string
			req        ferry.DataRequest
			method     string
			body, size string
		}{
			{"get", ferry.DataRequest{URL: url + "/x"}, "GET", "", "0"},
			{"bytes", ferry.DataRequest{URL: url + "/x", Body: []byte("hello")}, "POST", "hello", "5"},
			{"reader", ferry.DataRequest{URL: url + "/x", Method: "PATCH", BodyReader: strings.NewReader("patch")}, "PATCH", "patch", "5"},
			{"chunked", ferry.DataRequest{URL: url + "/x", Method: "PUT", BodyReader: io.MultiReader(strings.NewReader("chunk"))}, "PUT", "chunk", "-1"},
			{"file", ferry.DataRequest{URL: url + "/x", Method: "PUT", BodyFile: file}, "PUT", "from a file", "11"},
			{"delete", ferry.DataRequest{URL: url + "/x", Method: "DELETE"}, "DELETE", "", "0"},
			{"head", ferry.DataRequest{URL: url + "/x", Method: "HEAD"}, "HEAD", "", "0"},
		} {
			res, err := runData(t, s, c.req)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if res.StatusCode != 200 || res.Header.Get("X-Method") != c.method || string(res.Response) != c.body {
				t.Errorf("%s: %d %s %q, want 200 %s %q", c.name, res.StatusCode, res.Header.Get("X-Method"), res.Response, c.method, c.body)
			}
			if got := res.Header.Get("X-Content-Length"); got != c.size && !(h2 && c.size == "0" && got == "-1") {
				t.Errorf("%s: server saw Content-Length %s, want %s", c.name, got, c.size)
			}
			if res.Header.Get("X-Agent") != "ferry" {
				t.Errorf("%s: User-Agent %q", c.name, res.Header.Get("X-Agent"))
			}
			if res.Uploaded != int64(len(c.body)) || res.Downloaded != int64(len(c.body)) {
				t.Errorf("%s: sent %d, received %d; want %d each", c.name, res.Uploaded, res.Downloaded, len(c.body))
			}
			if n := len(res.Metrics.Transactions); n != 1 {
				t.Errorf("%s: %d transactions, want 1", c.name, n)
			}
		}
	})
}

// A *http.Request is accepted as the task's input, header and body
// included.
func TestDataFromHTTPRequest(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		url := echoServer(t, h2, &echo{})
		s := mustSession(t, testConfig(h2))
		req, err := http.NewRequest(http.MethodPost, url+"/x", strings.NewReader("net/http"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Token", "t0k3n")
		res, err := runData(t, s, ferry.DataRequest{Request: req})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Response) != "net/http" || res.Header.Get("X-Token") != "t0k3n" || res.Header.Get("X-Method") != "POST" {
			t.Errorf("got %q, token %q, method %q", res.Response, res.Header.Get("X-Token"), res.Header.Get("X-Method"))
		}
	})
}

// Any status is a response, not an error.
func TestDataStatusIsAResponse(t *testing.T) {
	url := echoServer(t, false, &echo{})
	s := mustSession(t, testConfig(false))
	for _, code := range []int{201, 204, 301, 404, 418, 501} {
		res, err := runData(t, s, ferry.DataRequest{URL: fmt.Sprintf("%s/status/%d", url, code)})
		if err != nil {
			t.Fatalf("%d: %v", code, err)
		}
		if res.StatusCode != code {
			t.Errorf("status %d, want %d", res.StatusCode, code)
		}
	}
}

// Statuses that say to come back are retried when the request may be sent
// again, and only then; when the retries run out, the last answer is the
// result.
func TestDataRetriesOnlyWhatMayBeRepeated(t *testing.T) {
	e := &echo{flaky: 2}
	url := echoServer(t, false, e)
	s := mustSession(t, testConfig(false))

	// 503 with Retry-After: the server did not act, so even a POST is
	// sent again.
	res, err := runData(t, s, ferry.DataRequest{URL: url + "/flaky", Body: []byte("once")})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("POST through two 503s: %v, %v", res, err)
	}
	if got := len(e.requests()); got != 3 {
		t.Errorf("%d requests, want 3", got)
	}

	// A body that can be read once cannot be sent again: the answer is
	// the result.
	e.mu.Lock()
	e.flaky = 1
	e.mu.Unlock()
	before := len(e.requests())
	res, err = runData(t, s, ferry.DataRequest{URL: url + "/flaky", Method: "PUT", BodyReader: strings.NewReader("one shot")})
	if err != nil || res.StatusCode != 503 || len(e.requests())-before != 1 {
		t.Errorf("PUT of a reader answered 503: %v, %v after %d requests; want the 503 after 1", res.StatusCode, err, len(e.requests())-before)
	}

	// A POST answered with a redirect was acted on: what the redirect
	// leads to (a 429, a host that is not there) does not send it again.
	for _, path := range []string{"/order", "/order-gone"} {
		before := len(e.requests())
		runData(t, s, ferry.DataRequest{URL: url + path, Body: []byte("buy")})
		posts := 0
		for _, r := range e.requests()[before:] {
			if r == "POST buy" {
				posts++
			}
		}
		if posts != 1 {
			t.Errorf("%s: the POST was sent %d times, want once", path, posts)
		}
	}

	// A 500 may have acted: a POST is sent once, its answer the result;
	// a GET is retried until the policy gives up, and the last answer is
	// the result.
	cfg := testConfig(false)
	cfg.Retry.MaxAttempts = 3
	s = mustSession(t, cfg)
	before = len(e.requests())
	res, err = runData(t, s, ferry.DataRequest{URL: url + "/status/500", Body: []byte("p")})
	if err != nil || res.StatusCode != 500 || len(e.requests())-before != 1 {
		t.Errorf("POST answered 500: %v, %v after %d requests; want the 500 after 1", res.StatusCode, err, len(e.requests())-before)
	}
	before = len(e.requests())
	res, err = runData(t, s, ferry.DataRequest{URL: url + "/status/500"})
	if err != nil || res.StatusCode != 500 || len(e.requests())-before != 3 {
		t.Errorf("GET answered 500: %v, %v after %d requests; want the 500 after 3", res.StatusCode, err, len(e.requests())-before)
	}
	before = len(e.requests())
	res, err = runData(t, s, ferry.DataRequest{URL: url + "/status/500", Body: []byte("k"), Idempotent: true})
	if err != nil || res.StatusCode != 500 || len(e.requests())-before != 3 {
		t.Errorf("idempotent POST answered 500: %v, %v after %d requests; want the 500 after 3", res.StatusCode, err, len(e.requests())-before)
	}
}

func TestDataResponseBound(t *testing.T) {
	url := echoServer(t, false, &echo{})
	s := mustSession(t, testConfig(false))
	_, err := runData(t, s, ferry.DataRequest{URL: url + "/big", MaxResponseSize: 1000})
	var tl *ferry.ResponseTooLargeError
	if !errors.As(err, &tl) || tl.Max != 1000 {
		t.Fatalf("a 1 MiB body over a 1000-byte bound: %v, want a *ResponseTooLargeError", err)
	}
	var fe *ferry.Error
	if !errors.As(err, &fe) || fe.URL == "" {
		t.Errorf("error %v is not a *ferry.Error naming the URL", err)
	}

	var out bytes.Buffer
	res, err := runData(t, s, ferry.DataRequest{URL: url + "/big", MaxResponseSize: 1000, Writer: &out})
	if err != nil || out.Len() != 1<<20 || res.Response != nil {
		t.Errorf("to a Writer: %v, %d bytes written, %d kept", err, out.Len(), len(res.Response))
	}
}

func TestDataRequestChecked(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	for _, r := range []ferry.DataRequest{
		{URL: "ftp://example.com/"},
		{URL: "http://example.com/", Method: "GE T"},
		{URL: "http://example.com/", Body: []byte("a"), BodyReader: strings.NewReader("b")},
		{URL: "http://example.com/", BodyFile: "/nonexistent/file"},
		{URL: "http://example.com/", MaxResponseSize: -1},
		{Request: req, URL: "http://example.com/"},
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("%+v was taken", r)
		}
	}
	if err := (&ferry.DataRequest{Request: req}).Validate(); err != nil {
		t.Errorf("a request from net/http: %v", err)
	}
}

// The default follows ten redirects and refuses the eleventh.
func TestTenRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/hop/"), &n)
		if n > 0 {
			http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
			return
		}
		io.WriteString(w, "arrived")
	}))
	defer srv.Close()
	s := mustSession(t, testConfig(false))
	if res, err := runData(t, s, ferry.DataRequest{URL: srv.URL + "/hop/10"}); err != nil || string(res.Response) != "arrived" || res.Metrics.Redirects != 10 {
		t.Errorf("ten redirects: %v, %v", res, err)
	}
	if _, err := runData(t, s, ferry.DataRequest{URL: srv.URL + "/hop/11"}); !errors.Is(err, ferry.ErrTooManyRedirects) {
		t.Errorf("eleven redirects: %v, want ErrTooManyRedirects", err)
	}
}
