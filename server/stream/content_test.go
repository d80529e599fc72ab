package stream_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/server/stream"
)

// A stored stream is what a client sent, so it is never served as active
// content: an HTML page comes back as a download of opaque bytes, and only
// media a browser never runs (audio, video, images but SVG, plain text) is
// shown inline; every answer forbids sniffing and runs in a sandbox.
func TestStoredStreamNotActive(t *testing.T) {
	s := newServer(t, stream.Config{}, false)
	wav := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), make([]byte, 32)...)
	for _, c := range []struct {
		name, body  string
		ctype, disp string
	}{
		{"evil.html", "<html><script>alert(document.cookie)</script></html>", "application/octet-stream", "attachment; filename=evil.html"},
		{"evil.svg", `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`, "application/octet-stream", "attachment; filename=evil.svg"},
		{"evil.js", "alert(1)", "application/octet-stream", "attachment; filename=evil.js"},
		{"sniffed", "<!DOCTYPE html><script>alert(1)</script>", "application/octet-stream", "attachment; filename=sniffed"},
		{"recording", string(wav), "audio/wave", "inline; filename=recording"},
		{"shot.png", "\x89PNG\r\n\x1a\n", "image/png", "inline; filename=shot.png"},
		{"notes.txt", "plain words", "text/plain; charset=utf-8", "inline; filename=notes.txt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.do(http.MethodPost, "/stream/"+c.name, nil, []byte(c.body))
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("POST: %s", r.Status)
			}
			for _, m := range []string{http.MethodGet, http.MethodHead} {
				r = s.do(m, "/stream/"+c.name, nil, nil)
				if r.StatusCode != http.StatusOK {
					t.Fatalf("%s: %s", m, r.Status)
				}
				for k, want := range map[string]string{
					"Content-Type":            c.ctype,
					"Content-Disposition":     c.disp,
					"X-Content-Type-Options":  "nosniff",
					"Content-Security-Policy": "sandbox",
				} {
					if got := r.Header.Get(k); got != want {
						t.Errorf("%s %s: %s = %q, want %q", m, c.name, k, got, want)
					}
				}
				if m == http.MethodGet && !strings.EqualFold(string(r.body), c.body) {
					t.Errorf("GET: %q, want the stream", r.body)
				}
			}
		})
	}
}

// A finished stream is opened inside the stream directory: a link there
// that leads out of it is not followed.
func TestStoredStreamLinkNotFollowed(t *testing.T) {
	s := newServer(t, stream.Config{}, false)
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"abs.txt": outside, "rel.txt": "../" + filepath.Base(filepath.Dir(outside)) + "/secret.txt"} {
		if err := os.Symlink(target, filepath.Join(s.dir, name)); err != nil {
			t.Fatal(err)
		}
		if r := s.do(http.MethodGet, "/stream/"+name, nil, nil); r.StatusCode != http.StatusNotFound || strings.Contains(string(r.body), "secret") {
			t.Errorf("GET %s, a link out of the directory: %s %q, want 404", name, r.Status, r.body)
		}
	}
}
