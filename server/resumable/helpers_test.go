package resumable_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/leakcheck"
	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store/filestore"
)

// TestMain fails the run when handlers, janitors or connections outlive
// the tests that started them.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "net/http.", "ferry/server/")
}

// env is a Handler over a fresh filestore (or the Config's store) behind a
// real loopback server, with a client speaking HTTP/1.1 or h2c.
type env struct {
	h2c    bool
	dir    string               // "" unless the store is a filestore
	store  *filestore.FileStore // nil unless the store is a filestore
	h      *resumable.Handler
	url    string // server base URL, no trailing slash
	client *http.Client
}

// run runs f over HTTP/1.1 and over h2c with prior knowledge.
func run(t *testing.T, cfg resumable.Config, f func(t *testing.T, e *env)) {
	t.Helper()
	for _, mode := range []struct {
		name string
		h2c  bool
	}{{"h1", false}, {"h2c", true}} {
		t.Run(mode.name, func(t *testing.T) { f(t, newEnv(t, mode.h2c, cfg)) })
	}
}

func newEnv(t *testing.T, h2c bool, cfg resumable.Config) *env {
	t.Helper()
	var dir string
	var st *filestore.FileStore
	if cfg.Store == nil {
		dir = t.TempDir()
		var err error
		if st, err = filestore.New(filestore.Config{Dir: dir}); err != nil {
			t.Fatal(err)
		}
		cfg.Store = st
	}
	if cfg.Logger == nil {
		cfg.Logger = ferrytest.Logger(t)
	}
	h, err := resumable.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	mux := http.NewServeMux()
	mux.Handle("/files/", h)
	mux.Handle("/files", h)
	mux.HandleFunc("POST /upload", h.PostForm)
	ts := httptest.NewUnstartedServer(mux)
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetHTTP1(true)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	t.Cleanup(ts.Close)
	return &env{h2c: h2c, dir: dir, store: st, h: h, url: ts.URL, client: newClient(t, h2c)}
}

func newClient(t *testing.T, h2c bool) *http.Client {
	p := new(http.Protocols)
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: p, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// response is a finished exchange: the final response, its body, and the
// interim responses that came before it.
type response struct {
	*http.Response
	body    []byte
	interim []interim
}

type interim struct {
	code   int
	header textproto.MIMEHeader
}

// problem decodes a problem-details body.
func (r *response) problem(t *testing.T) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q, want application/problem+json; body %q", r.Status, ct, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	for _, k := range []string{"type", "title", "status"} {
		if _, ok := m[k]; !ok {
			t.Errorf("problem %s has no %q member", r.body, k)
		}
	}
	return m
}

// do sends a request with headers as "Key: value" strings. body may be a
// []byte, a string, an io.Reader or nil. url is a path or an absolute URL.
func (e *env) do(t *testing.T, method, url string, body any, headers ...string) *response {
	t.Helper()
	if strings.HasPrefix(url, "/") {
		url = e.url + url
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	default:
		t.Fatalf("body of type %T", body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	res := &response{}
	var mu sync.Mutex
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		defer mu.Unlock()
		res.interim = append(res.interim, interim{code, textproto.MIMEHeader(http.Header(h).Clone())})
		return nil
	}}
	req = req.WithContext(httptrace.WithClientTrace(t.Context(), trace))
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	res.Response = resp
	res.body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return res
}

// expect fails unless r has the given status.
func (r *response) expect(t *testing.T, status int) *response {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %s, want %d; body %s", r.Request.Method, r.Request.URL.Path, r.Status, status, r.body)
	}
	return r
}

// header fails unless header k of r is want.
func (r *response) header(t *testing.T, k, want string) {
	t.Helper()
	if got := r.Header.Get(k); got != want {
		t.Errorf("%s %s: %s = %q, want %q", r.Request.Method, r.Request.URL.Path, k, got, want)
	}
}

const tus = "Tus-Resumable: 1.0.0"

// create makes a tus upload of size bytes and returns its URL.
func (e *env) create(t *testing.T, size int, headers ...string) string {
	t.Helper()
	r := e.do(t, "POST", "/files/", nil, append([]string{tus, fmt.Sprintf("Upload-Length: %d", size)}, headers...)...).expect(t, 201)
	loc := r.Header.Get("Location")
	if !strings.HasPrefix(loc, e.url+"/files/") {
		t.Fatalf("Location %q is not below %s/files/", loc, e.url)
	}
	return loc
}

// patch appends data at offset with tus.
func (e *env) patch(t *testing.T, url string, offset int, data []byte, headers ...string) *response {
	t.Helper()
	return e.do(t, "PATCH", url, data, append([]string{tus, "Content-Type: application/offset+octet-stream", fmt.Sprintf("Upload-Offset: %d", offset)}, headers...)...)
}

// download GETs url and returns the body.
func (e *env) download(t *testing.T, url string) []byte {
	t.Helper()
	return e.do(t, "GET", url, nil).expect(t, 200).body
}

func mustEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes, want %d (equal prefix %v)", what, len(got), len(want), bytes.HasPrefix(want, got))
	}
}

// fakeClock is a Config.Now that moves only when told to. It starts at the
// real time, so uploads the store stamps with time.Now are fresh by it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// code returns the problem code of r.
func (r *response) code(t *testing.T) string {
	t.Helper()
	c, _ := r.problem(t)["code"].(string)
	return c
}
