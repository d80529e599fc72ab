package server_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server"
)

const fileSize = 100_000

var strongETag = regexp.MustCompile(`^"[0-9a-f]+"$`)

func TestGetWholeFile(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(fileSize, 1)
		for _, name := range []string{"dir/big.bin", "archive.tar.gz", "page.html"} {
			t.Run(name, func(t *testing.T) {
				p := e.write(t, name, data)
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				// Bytes as stored, whatever the client accepts.
				resp, body := e.do(t, "GET", "/"+name, "Accept-Encoding: gzip, br")
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET status = %d, want 200", resp.StatusCode)
				}
				mustEqualBytes(t, "GET body", body, data)
				for _, c := range []struct{ key, want string }{
					{"Accept-Ranges", "bytes"},
					{"Content-Length", strconv.Itoa(fileSize)},
					{"Last-Modified", fi.ModTime().UTC().Format(http.TimeFormat)},
					{"Content-Encoding", ""},
				} {
					if got := resp.Header.Get(c.key); got != c.want {
						t.Errorf("GET header %s = %q, want %q", c.key, got, c.want)
					}
				}
				if etag := resp.Header.Get("ETag"); !strongETag.MatchString(etag) {
					t.Errorf("GET ETag = %q, want a strong quoted hex string", etag)
				}
			})
		}
	})
}

func TestRange(t *testing.T) {
	data := ferrytest.Bytes(fileSize, 2)
	tests := []struct {
		name         string
		rng          string
		status       int
		contentRange string
		body         []byte // nil: not checked
	}{
		{"start-end", "bytes=0-9", 206, "bytes 0-9/100000", data[0:10]},
		{"middle", "bytes=5000-5999", 206, "bytes 5000-5999/100000", data[5000:6000]},
		{"single byte", "bytes=0-0", 206, "bytes 0-0/100000", data[:1]},
		{"suffix", "bytes=-500", 206, "bytes 99500-99999/100000", data[99500:]},
		{"suffix larger than file", "bytes=-200000", 206, "bytes 0-99999/100000", data},
		{"open", "bytes=99000-", 206, "bytes 99000-99999/100000", data[99000:]},
		{"end past size", "bytes=99990-200000", 206, "bytes 99990-99999/100000", data[99990:]},
		{"start at size", "bytes=100000-", 416, "bytes */100000", nil},
		{"start past size", "bytes=200000-300000", 416, "bytes */100000", nil},
		{"unit is case-insensitive", "Bytes=0-9", 206, "bytes 0-9/100000", data[0:10]},
		{"unknown unit ignored", "lines=1-2", 200, "", data},
		{"malformed", "bytes=abc", 416, "bytes */100000", nil},
		{"no range set", "bytes", 416, "bytes */100000", nil},
	}
	run(t, func(t *testing.T, e *env) {
		e.write(t, "f.bin", data)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := e.do(t, "GET", "/f.bin", "Range: "+tt.rng)
				if resp.StatusCode != tt.status {
					t.Fatalf("GET Range %s: status = %d, want %d", tt.rng, resp.StatusCode, tt.status)
				}
				if got := resp.Header.Get("Content-Range"); got != tt.contentRange {
					t.Errorf("GET Range %s: Content-Range = %q, want %q", tt.rng, got, tt.contentRange)
				}
				if got := resp.Header.Get("Accept-Ranges"); tt.status != 416 && got != "bytes" {
					t.Errorf("GET Range %s: Accept-Ranges = %q, want bytes", tt.rng, got)
				}
				if tt.body != nil {
					mustEqualBytes(t, "GET Range "+tt.rng, body, tt.body)
					if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(tt.body)) {
						t.Errorf("GET Range %s: Content-Length = %s, want %d", tt.rng, got, len(tt.body))
					}
				}
			})
		}

		t.Run("multi", func(t *testing.T) {
			resp, body := e.do(t, "GET", "/f.bin", "Range: bytes=0-9, 50000-50009")
			if resp.StatusCode != 206 {
				t.Fatalf("status = %d, want 206", resp.StatusCode)
			}
			mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if err != nil || mt != "multipart/byteranges" {
				t.Fatalf("Content-Type = %q, want multipart/byteranges", resp.Header.Get("Content-Type"))
			}
			mr := multipart.NewReader(strings.NewReader(string(body)), params["boundary"])
			for _, want := range []struct {
				cr   string
				body []byte
			}{{"bytes 0-9/100000", data[0:10]}, {"bytes 50000-50009/100000", data[50000:50010]}} {
				part, err := mr.NextPart()
				if err != nil {
					t.Fatalf("next part: %v", err)
				}
				if got := part.Header.Get("Content-Range"); got != want.cr {
					t.Errorf("part Content-Range = %q, want %q", got, want.cr)
				}
				got, _ := io.ReadAll(part)
				mustEqualBytes(t, "part "+want.cr, got, want.body)
			}
			if _, err := mr.NextPart(); err != io.EOF {
				t.Errorf("after two parts: err = %v, want EOF", err)
			}
		})
	})
}

func TestConditional(t *testing.T) {
	data := ferrytest.Bytes(fileSize, 3)
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	lastMod := mtime.Format(http.TimeFormat)
	before := mtime.Add(-time.Hour).Format(http.TimeFormat)
	after := mtime.Add(time.Hour).Format(http.TimeFormat)

	run(t, func(t *testing.T, e *env) {
		p := e.write(t, "c.bin", data)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		resp, _ := e.do(t, "HEAD", "/c.bin")
		etag := resp.Header.Get("ETag")
		if got := resp.Header.Get("Last-Modified"); got != lastMod {
			t.Fatalf("Last-Modified = %q, want %q", got, lastMod)
		}

		tests := []struct {
			name    string
			headers []string
			status  int
			body    []byte // nil: not checked
		}{
			{"If-Range ETag matches", []string{"Range: bytes=10-19", "If-Range: " + etag}, 206, data[10:20]},
			{"If-Range stale ETag", []string{"Range: bytes=10-19", `If-Range: "0123abcd"`}, 200, data},
			{"If-Range weak ETag", []string{"Range: bytes=10-19", "If-Range: W/" + etag}, 200, data},
			{"If-Range Last-Modified", []string{"Range: bytes=10-19", "If-Range: " + lastMod}, 206, data[10:20]},
			{"If-Range older date", []string{"Range: bytes=10-19", "If-Range: " + before}, 200, data},
			{"If-None-Match ETag", []string{"If-None-Match: " + etag}, 304, []byte{}},
			{"If-None-Match list", []string{`If-None-Match: "x", ` + etag}, 304, []byte{}},
			{"If-None-Match star", []string{"If-None-Match: *"}, 304, []byte{}},
			{"If-None-Match other", []string{`If-None-Match: "x"`}, 200, data},
			{"If-Modified-Since Last-Modified", []string{"If-Modified-Since: " + lastMod}, 304, []byte{}},
			{"If-Modified-Since before", []string{"If-Modified-Since: " + before}, 200, data},
			{"If-Match ETag", []string{"If-Match: " + etag}, 200, data},
			{"If-Match stale", []string{`If-Match: "0123abcd"`}, 412, nil},
			{"If-Match with Range", []string{"If-Match: " + etag, "Range: bytes=0-0"}, 206, data[:1]},
			{"If-Unmodified-Since after", []string{"If-Unmodified-Since: " + after}, 200, data},
			{"If-Unmodified-Since before", []string{"If-Unmodified-Since: " + before}, 412, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := e.do(t, "GET", "/c.bin", tt.headers...)
				if resp.StatusCode != tt.status {
					t.Fatalf("GET %q: status = %d, want %d", tt.headers, resp.StatusCode, tt.status)
				}
				if tt.body != nil {
					mustEqualBytes(t, "body", body, tt.body)
				}
				if tt.status == 304 && resp.Header.Get("ETag") != etag {
					t.Errorf("304 ETag = %q, want %q", resp.Header.Get("ETag"), etag)
				}
			})
		}
	})
}

func TestHead(t *testing.T) {
	data := ferrytest.Bytes(fileSize, 4)
	run(t, func(t *testing.T, e *env) {
		e.write(t, "h.bin", data)
		get, _ := e.do(t, "GET", "/h.bin")

		tests := []struct {
			name    string
			headers []string
			status  int
			length  string
			cr      string
		}{
			{"whole", nil, 200, "100000", ""},
			{"range", []string{"Range: bytes=100-199"}, 206, "100", "bytes 100-199/100000"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := e.do(t, "HEAD", "/h.bin", tt.headers...)
				if resp.StatusCode != tt.status {
					t.Fatalf("HEAD status = %d, want %d", resp.StatusCode, tt.status)
				}
				if len(body) != 0 {
					t.Errorf("HEAD body = %d bytes, want none", len(body))
				}
				for _, c := range []struct{ key, want string }{
					{"Content-Length", tt.length},
					{"Content-Range", tt.cr},
					{"Accept-Ranges", "bytes"},
					{"ETag", get.Header.Get("ETag")},
					{"Last-Modified", get.Header.Get("Last-Modified")},
					{"Content-Type", get.Header.Get("Content-Type")},
				} {
					if got := resp.Header.Get(c.key); got != c.want {
						t.Errorf("HEAD header %s = %q, want %q", c.key, got, c.want)
					}
				}
			})
		}
	})
}

func TestETagChangesWithFile(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		v1 := ferrytest.Bytes(fileSize, 5)
		p := e.write(t, "e.bin", v1)
		mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		etag := func() string {
			t.Helper()
			resp, _ := e.do(t, "HEAD", "/e.bin")
			return resp.Header.Get("ETag")
		}
		e1 := etag()

		// Same size, new bytes, written in place: the mtime moves.
		v2 := ferrytest.Bytes(fileSize, 6)
		if err := os.WriteFile(p, v2, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime.Add(time.Second), mtime.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		e2 := etag()
		if e2 == e1 {
			t.Errorf("ETag after rewrite = %s, unchanged", e2)
		}

		// Replaced by rename with the same size and mtime: only the
		// inode tells the versions apart.
		v3 := ferrytest.Bytes(fileSize, 7)
		tmp := filepath.Join(e.root, "e.tmp")
		if err := os.WriteFile(tmp, v3, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, mtime.Add(time.Second), mtime.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
		e3 := etag()
		if e3 == e2 || e3 == e1 {
			t.Errorf("ETag after replace = %s, want a new one (had %s, %s)", e3, e1, e2)
		}
		if !strongETag.MatchString(e3) {
			t.Errorf("ETag = %q, want a strong quoted hex string", e3)
		}

		// A client resuming with the old validator gets the new file whole.
		resp, body := e.do(t, "GET", "/e.bin", "Range: bytes=0-9", "If-Range: "+e1)
		if resp.StatusCode != 200 {
			t.Fatalf("GET with stale If-Range: status = %d, want 200", resp.StatusCode)
		}
		mustEqualBytes(t, "GET with stale If-Range", body, v3)
	})
}

func TestPathEscapes(t *testing.T) {
	const secret = "TOP SECRET outside the root"
	run(t, func(t *testing.T, e *env) {
		inside := []byte("inside the root")
		e.write(t, "inside.txt", inside)
		e.write(t, "sub/file.txt", inside)
		outDir := filepath.Join(e.base, "outside")
		if err := os.Mkdir(outDir, 0o755); err != nil {
			t.Fatal(err)
		}
		outFile := filepath.Join(outDir, "secret.txt")
		if err := os.WriteFile(outFile, []byte(secret), 0o644); err != nil {
			t.Fatal(err)
		}
		// A sibling temp directory of its own, reached by a relative link.
		sibling := t.TempDir()
		if err := os.WriteFile(filepath.Join(sibling, "secret.txt"), []byte(secret), 0o644); err != nil {
			t.Fatal(err)
		}
		relSibling, err := filepath.Rel(e.root, filepath.Join(sibling, "secret.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for link, target := range map[string]string{
			"link-passwd":      "/etc/passwd",
			"link-abs":         outFile,
			"link-rel":         "../outside/secret.txt",
			"link-sibling":     relSibling,
			"link-dir":         "../outside",
			"sub/link-up":      "../../outside/secret.txt",
			"link-inside":      "inside.txt",
			"sub/link-in-root": "../inside.txt",
		} {
			if err := os.Symlink(target, filepath.Join(e.root, filepath.FromSlash(link))); err != nil {
				t.Fatal(err)
			}
		}

		for _, path := range []string{
			"/../outside/secret.txt",
			"/sub/../../outside/secret.txt",
			"/%2e%2e/outside/secret.txt",
			"/%2E%2e/outside/secret.txt",
			"/%2E%2e%2Foutside%2Fsecret.txt",
			"/sub/%2e%2e/%2e%2e/outside/secret.txt",
			"/..%5Coutside%5Csecret.txt",
			"/sub%5C..%5C..%5Coutside%5Csecret.txt",
			"/inside.txt%00",
			"/..%00/outside/secret.txt",
			"/./inside.txt",
			"/" + url.PathEscape(filepath.ToSlash(outFile)),
			"//" + strings.TrimPrefix(filepath.ToSlash(outFile), "/"),
			"/etc/passwd",
			"/link-passwd",
			"/link-abs",
			"/link-rel",
			"/link-sibling",
			"/link-dir/secret.txt",
			"/sub/link-up",
			"/sub",
			"/sub/",
			"/",
			"/missing.txt",
			"/inside.txt/",
			"/inside.txt/x",
		} {
			t.Run(path, func(t *testing.T) {
				for _, method := range []string{"GET", "HEAD"} {
					resp, body := e.do(t, method, path)
					if resp.StatusCode != 404 && resp.StatusCode != 400 {
						t.Errorf("%s %s: status = %d, want 404 or 400", method, path, resp.StatusCode)
					}
					if strings.Contains(string(body), secret) || strings.Contains(string(body), "root:") {
						t.Errorf("%s %s: body holds a file from outside the root: %q", method, path, body)
					}
				}
			})
		}

		for _, path := range []string{"/link-inside", "/sub/link-in-root", "/sub/file.txt"} {
			t.Run(path, func(t *testing.T) {
				resp, body := e.do(t, "GET", path)
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: status = %d, want 200", path, resp.StatusCode)
				}
				mustEqualBytes(t, "GET "+path, body, inside)
			})
		}
	})
}

func TestMethodNotAllowed(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		e.write(t, "m.txt", []byte("m"))
		for _, method := range []string{"PUT", "POST", "DELETE", "PATCH", "OPTIONS"} {
			t.Run(method, func(t *testing.T) {
				resp, _ := e.do(t, method, "/m.txt")
				if resp.StatusCode != http.StatusMethodNotAllowed {
					t.Fatalf("%s: status = %d, want 405", method, resp.StatusCode)
				}
				allow := resp.Header.Get("Allow")
				if !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
					t.Errorf("%s: Allow = %q, want GET and HEAD", method, allow)
				}
			})
		}
	})
}

func TestHealthz(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		resp, body := e.do(t, "GET", "/healthz")
		if resp.StatusCode != 200 || string(body) != "ok\n" {
			t.Errorf("GET /healthz = %d %q, want 200 %q", resp.StatusCode, body, "ok\n")
		}
	})
}

// recordHandler is a slog.Handler that hands over every record.
type recordHandler struct{ records chan slog.Record }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.records <- r.Clone()
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

func TestAccessLog(t *testing.T) {
	for _, h2c := range []bool{false, true} {
		t.Run(map[bool]string{false: "h1", true: "h2c"}[h2c], func(t *testing.T) {
			records := make(chan slog.Record, 16)
			e := newEnv(t, h2c, slog.New(recordHandler{records}))
			e.write(t, "log.bin", ferrytest.Bytes(1000, 8))
			e.do(t, "GET", "/log.bin", "Range: bytes=10-109")

			var rec slog.Record
			select {
			case rec = <-records:
			case <-time.After(10 * time.Second):
				t.Fatal("no access log record")
			}
			got := map[string]slog.Value{}
			rec.Attrs(func(a slog.Attr) bool {
				got[a.Key] = a.Value
				return true
			})
			wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2c]
			for key, want := range map[string]string{
				"method": "GET",
				"path":   "/log.bin",
				"status": "206",
				"bytes":  "100",
				"proto":  wantProto,
				"range":  "bytes=10-109",
			} {
				if got[key].String() != want {
					t.Errorf("log %s = %q, want %q", key, got[key].String(), want)
				}
			}
			if !strings.HasPrefix(got["remote"].String(), "127.0.0.1:") {
				t.Errorf("log remote = %q, want 127.0.0.1:port", got["remote"])
			}
			if got["duration"].Kind() != slog.KindDuration {
				t.Errorf("log duration = %v, want a duration", got["duration"])
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		root string
		want error
	}{
		{"empty", "", server.ErrNoRoot},
		{"missing", filepath.Join(dir, "missing"), fs.ErrNotExist},
		{"file", file, server.ErrNotDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := server.New(server.Config{Root: tt.root})
			if err == nil {
				s.Close()
				t.Fatalf("New(Root: %q) = nil error, want %v", tt.root, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("New(Root: %q) = %v, want errors.Is %v", tt.root, err, tt.want)
			}
			if _, ok := errors.AsType[*server.ConfigError](err); !ok {
				t.Errorf("New(Root: %q) = %T, want *ConfigError", tt.root, err)
			}
		})
	}
}
