package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidPath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/", true},
		{"/a", true},
		{"/a/b.txt", true},
		{"/a/", true},
		{"/a..b", true},
		{"/...", true},
		{"/.hidden", true},
		{"", false},
		{"a", false},
		{"*", false},
		{"/..", false},
		{"/../a", false},
		{"/a/..", false},
		{"/a/../b", false},
		{"/.", false},
		{"/./a", false},
		{"//a", false},
		{"/a//b", false},
		{"/a\\b", false},
		{"/..\\a", false},
		{"/a\x00", false},
	}
	for _, tt := range tests {
		if got := validPath(tt.path); got != tt.want {
			t.Errorf("validPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestServeFileEscapesWithoutPathCheck calls the file handler directly, past
// the check in ServeHTTP, to show that os.Root alone keeps every name inside.
func TestServeFileEscapesWithoutPathCheck(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	for _, dir := range []string{root, filepath.Join(base, "outside")} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const secret = "secret outside the root"
	if err := os.WriteFile(filepath.Join(base, "outside", "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside/secret.txt", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, p := range []string{
		"/../outside/secret.txt",
		"/./../outside/secret.txt",
		"//" + filepath.ToSlash(filepath.Join(base, "outside", "secret.txt")),
		"/link",
		"/..",
		"/.",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path = p
		w := httptest.NewRecorder()
		s.serveFile(w, r)
		if w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), secret) {
			t.Errorf("serveFile(%q) = %d %q, want 404", p, w.Code, w.Body)
		}
	}
}
