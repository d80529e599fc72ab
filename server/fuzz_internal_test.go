package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSecret marks bytes no request may ever read: outside the root, in a
// state directory inside it, in work files and dot files.
const fuzzSecret = "SECRET-never-served"

// fuzzServer is a root holding public files next to everything the origin
// must not serve, reached in every way a path can reach it.
// It returns the ETags of the public files.
func fuzzServer(f *testing.F) (*Server, map[string]bool) {
	base := f.TempDir()
	root := filepath.Join(base, "root")
	files := map[string]string{
		"root/pub.txt":             "public",
		"root/dir/pub.bin":         "public",
		"root/up/abc.bin":          fuzzSecret,
		"root/up/abc.info":         fuzzSecret,
		"root/up/streams/talk.wav": fuzzSecret,
		"root/state/ferry.db":      fuzzSecret,
		"root/dl.iso.part":         fuzzSecret,
		"root/dl.iso.ferry":        fuzzSecret,
		"root/.dl.iso.tmp42":       fuzzSecret,
		"root/.git/config":         fuzzSecret,
		"root/dir/.env":            fuzzSecret,
		"outside/secret.txt":       fuzzSecret,
	}
	for name, data := range files {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"root/to-up":         "up",
		"root/dir/to-bin":    "../up/abc.bin",
		"root/dir/to-stream": "../to-up/streams",
		"root/to-out":        "../outside/secret.txt",
		"root/to-abs":        filepath.Join(base, "outside"),
		"root/to-git":        ".git",
		"root/loop":          "loop",
		"root/to-pub":        "dir/pub.bin",
		"root/dir/up-pub":    "../pub.txt",
	} {
		if err := os.Symlink(target, filepath.Join(base, filepath.FromSlash(link))); err != nil {
			f.Fatal(err)
		}
	}
	s, err := New(Config{Root: root, Uploads: filepath.Join(root, "up"), Hide: []string{filepath.Join(root, "state")}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	public := map[string]bool{}
	for _, name := range []string{"root/pub.txt", "root/dir/pub.bin"} {
		fi, err := os.Stat(filepath.Join(base, name))
		if err != nil {
			f.Fatal(err)
		}
		public[fileETag(fi)] = true
	}
	return s, public
}

// FuzzServeFile sends GET and HEAD for any path, with any Range and
// If-Range, and checks that no answer carries a byte it must not and none
// is a server failure.
func FuzzServeFile(f *testing.F) {
	s, public := fuzzServer(f)
	for _, seed := range []struct{ path, rng, ifRange string }{
		{"/pub.txt", "", ""},
		{"/dir/pub.bin", "bytes=0-2", ""},
		{"/to-pub", "bytes=-1", `"x"`},
		{"/dir/up-pub", "bytes=1-,0-0", ""},
		{"/up/abc.bin", "", ""},
		{"/to-up/abc.info", "", ""},
		{"/dir/to-bin", "", ""},
		{"/dir/to-stream/talk.wav", "", ""},
		{"/to-out", "", ""},
		{"/to-abs/secret.txt", "", ""},
		{"/to-git/config", "", ""},
		{"/loop", "", ""},
		{"/%2e%2e/outside/secret.txt", "", ""},
		{"/dir/%2E%2E/up/abc.bin", "", ""},
		{"/UP/abc.bin", "", ""},
		{"/dl.iso.PART", "", ""},
		{"/.dl.iso.tmp42", "", ""},
		{"/state/ferry.db", "Bytes=0-", ""},
		{"/pub.txt%00", "", ""},
		{"/pub.txt\r\nX: y", "", ""},
		{"//pub.txt", "bytes=0-0,0-0,0-0", ""},
		{"/dir/", "", ""},
		{"/files/abc", "bytes=999999999999999999999-", ""},
	} {
		f.Add(seed.path, seed.rng, seed.ifRange, false)
		f.Add(seed.path, seed.rng, seed.ifRange, true)
	}
	f.Fuzz(func(t *testing.T, path, rng, ifRange string, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		r := httptest.NewRequest(method, "/", nil)
		// The path as a client could send it, percent-decoded as net/http
		// does; one that does not parse is not a request.
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		r.URL = u
		r.RequestURI = u.RequestURI()
		r.Header.Set("Range", rng)
		r.Header.Set("If-Range", ifRange)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if u.Path == "/stream/talk.wav" {
			// The stream endpoint serves a finished stream, as documented:
			// it is the uploader's, not the file tree's to hide. Reached any
			// other way (the tree, a link into Uploads) it stays a secret.
			return
		}
		if bytes.Contains(w.Body.Bytes(), []byte(fuzzSecret)) {
			t.Fatalf("%s %q (Range %q): %d served a secret", method, u.Path, rng, w.Code)
		}
		if w.Code >= 500 {
			t.Fatalf("%s %q (Range %q): %d %q", method, u.Path, rng, w.Code, w.Body)
		}
		// Every success is one of the public files, whatever the range.
		if etag := w.Header().Get("ETag"); w.Code/100 == 2 && u.Path != "/healthz" && !public[etag] {
			t.Fatalf("%s %q (Range %q): %d with ETag %q, not a public file's", method, u.Path, rng, w.Code, etag)
		}
	})
}
