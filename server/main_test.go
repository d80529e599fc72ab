package server_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/leakcheck"
	"github.com/ferryhq/ferry/server"
)

// TestMain fails the run when servers, connections or digest computations
// outlive the tests that started them.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "net/http.", "ferryhq/ferry/server.")
}

// env is a Server over a fresh root behind a real loopback server, with a
// client speaking one protocol.
type env struct {
	h2c    bool
	base   string // temp directory holding root; siblings are outside it
	root   string
	srv    *server.Server
	url    string
	client *http.Client
}

// run runs f once over HTTP/1.1 and once over h2c with prior knowledge.
func run(t *testing.T, f func(t *testing.T, e *env)) {
	t.Helper()
	runWith(t, func(cfg server.Config) server.Config { return cfg }, f)
}

// runWith is run with a Config changed by config.
func runWith(t *testing.T, config func(server.Config) server.Config, f func(t *testing.T, e *env)) {
	t.Helper()
	for _, mode := range []struct {
		name string
		h2c  bool
	}{{"h1", false}, {"h2c", true}} {
		t.Run(mode.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			f(t, serveEnv(t, mode.h2c, base, config(server.Config{Root: root})))
		})
	}
}

func newEnv(t *testing.T, h2c bool, log *slog.Logger) *env {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return serveEnv(t, h2c, base, server.Config{Root: root, Logger: log})
}

// serveEnv runs a Server for cfg, whose Root is below base, behind a
// loopback server speaking HTTP/1.1 and h2c.
func serveEnv(t *testing.T, h2c bool, base string, cfg server.Config) *env {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = ferrytest.Logger(t)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	ts := httptest.NewUnstartedServer(srv)
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetHTTP1(true)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	t.Cleanup(ts.Close)

	return &env{h2c: h2c, base: base, root: cfg.Root, srv: srv, url: ts.URL, client: newClient(t, h2c)}
}

// newClient returns a client for plain http:// URLs speaking HTTP/1.1, or
// only h2c when h2c is set. It never asks for compression, so responses
// arrive as sent.
func newClient(t *testing.T, h2c bool) *http.Client {
	p := new(http.Protocols)
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: p, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// write creates the file name below root with data.
func (e *env) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(e.root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// do sends a request for path with headers given as "Key: value" strings
// and returns the response with its body read.
func (e *env) do(t *testing.T, method, path string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	if want := map[bool]int{false: 1, true: 2}[e.h2c]; resp.ProtoMajor != want {
		t.Fatalf("%s %s: proto = %s, want HTTP/%d", method, path, resp.Proto, want)
	}
	return resp, body
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func mustEqualBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: got %d bytes (sha256 %x), want %d bytes (sha256 %x)", what, len(got), sha256Sum(got), len(want), sha256Sum(want))
	}
}
