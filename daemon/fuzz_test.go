package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/internal/journal"
)

// apiSeeds are requests clients send.
var apiSeeds = [][3]string{
	{"POST", "/v1/sessions/app/tasks", `{"get":{"url":"http://127.0.0.1:1/f","path":"SANDBOX/a","connections":4,"checksum":"sha-256=00","header":{"X":["y"]}}}`},
	{"POST", "/v1/sessions/app/tasks", `{"priority":5,"not_before":"2030-01-01T00:00:00Z","put":{"url":"http://h/files/","path":"SANDBOX/b","protocol":"tus","chunk_size":1024}}`},
	{"POST", "/v1/sessions/app/tasks", `{"hls":{"url":"http://h/m.m3u8","dir":"SANDBOX/d","variant":"best","live_duration":"10m","concat":"SANDBOX/d.ts"}}`},
	{"GET", "/v1/tasks?session=app", ""},
	{"GET", "/v1/tasks/t000000000001", ""},
	{"GET", "/v1/tasks/t000000000001/wait?timeout=1ms", ""},
	{"POST", "/v1/tasks/t000000000001/pause", ""},
	{"POST", "/v1/tasks/t000000000001/resume", ""},
	{"POST", "/v1/tasks/t000000000002/cancel", ""},
	{"GET", "/v1/sessions/app/events?after=0&follow=1&attach=1", ""},
	{"POST", "/v1/sessions/app/ack", `{"seq":1}`},
	{"DELETE", "/v1/sessions/app?cancel=1", ""},
	{"DELETE", "/v1/sessions/app/attach", ""},
	{"GET", "/v1/health", ""},
}

// bareDaemon is a daemon over a journal in a fresh directory, with no
// scheduler: tasks stay where the requests put them.
func bareDaemon(tb testing.TB) *daemon {
	dir := tb.TempDir()
	j, err := journal.Open(filepath.Join(dir, "ferry.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { j.Close() })
	s, err := ferry.NewSession(ferry.Config{StateDir: filepath.Join(dir, "uploads")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return newDaemon(Config{StateDir: dir, MaxTasks: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)), j, s)
}

// fuzzDaemon is a bare daemon's API, and the directory the requests may
// name files in.
func fuzzDaemon(f *testing.F) (http.Handler, string) {
	d := bareDaemon(f)
	return d.routes(), filepath.Join(d.cfg.StateDir, "files")
}

// FuzzAPI sends the daemon's API any request: none is answered with a
// server error or a malformed answer, and none crashes it.
func FuzzAPI(f *testing.F) {
	h, sandbox := fuzzDaemon(f)
	for _, s := range apiSeeds {
		f.Add(s[0], s[1], strings.ReplaceAll(s[2], "SANDBOX", sandbox))
	}
	// Streams and waits end at once: the request's context is over.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if outside(body, sandbox) {
			return // a cancel deletes partial files: keep it to the sandbox
		}
		req, err := http.NewRequestWithContext(done, method, "http://ferry"+target, strings.NewReader(body))
		if err != nil {
			return // no client can send it
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkAnswer(t, req, w)
	})
}

// checkAnswer fails on a server error or an answer that does not parse.
func checkAnswer(t *testing.T, req *http.Request, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, w.Code, w.Body)
	}
	switch ct := w.Header().Get("Content-Type"); ct {
	case "application/problem+json":
		var p bgapi.Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code || p.Title == "" {
			t.Fatalf("%s %s: problem %q: %v", req.Method, req.URL, w.Body, err)
		}
	case "application/json":
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: invalid JSON %q", req.Method, req.URL, w.Body)
		}
	case "application/x-ndjson":
		for _, l := range strings.Split(strings.TrimSpace(w.Body.String()), "\n") {
			if l != "" && !json.Valid([]byte(l)) {
				t.Fatalf("%s %s: invalid event line %q", req.Method, req.URL, l)
			}
		}
	}
}

// outside reports a body naming an absolute path outside the sandbox (in
// any string, as field names match whatever their case).
func outside(body, sandbox string) bool {
	var v any
	if json.Unmarshal([]byte(body), &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case string:
			return strings.HasPrefix(v, "/") && !strings.HasPrefix(filepath.Clean(v), sandbox+"/")
		case []any:
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		case map[string]any:
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}
