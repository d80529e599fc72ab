package ferry_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server"
)

// originWith serves a generated file from a real ferry origin, which answers
// Want-Repr-Digest with Repr-Digest (RFC 9530), through wrap.
func originWith(t *testing.T, size int64, wrap func(http.Handler) http.Handler) (url, sum string) {
	t.Helper()
	root := t.TempDir()
	src := ferrytest.NewServer(t, ferrytest.Size(size))
	f, _ := os.Create(filepath.Join(root, "f.bin"))
	buf := make([]byte, size)
	src.Content(1).ReadAt(buf, 0)
	f.Write(buf)
	f.Close()
	return serveOrigin(t, server.Config{Root: root}, wrap) + "/f.bin", src.SHA256()
}

func TestReprDigestVerified(t *testing.T) {
	for _, conns := range []int{1, 4} {
		url, sum := originWith(t, 4<<20, nil)
		res, _, err := download(t, mustSession(t, testConfig(false)),
			ferry.DownloadRequest{URL: url, Path: filepath.Join(t.TempDir(), "o"), SHA256: true, Connections: conns})
		if err != nil {
			t.Fatal(err)
		}
		if res.SHA256 != sum || !slices.Contains(res.Verified, "repr-digest sha-256") {
			t.Fatalf("connections %d: sha %s verified %v; want %s checked against the server's Repr-Digest", conns, res.SHA256, res.Verified, sum)
		}
	}
}

// A server whose Repr-Digest disagrees with the bytes it sent: exit code 3
// territory, and nothing under the final name.
func TestReprDigestMismatch(t *testing.T) {
	for _, conns := range []int{1, 4} {
		url, _ := originWith(t, 4<<20, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(&lyingDigest{ResponseWriter: w}, r)
			})
		})
		dir := t.TempDir()
		_, _, err := download(t, mustSession(t, testConfig(false)),
			ferry.DownloadRequest{URL: url, Path: filepath.Join(dir, "o"), Connections: conns})
		ie, ok := errors.AsType[*ferry.IntegrityError](err)
		if !ok || ie.What != "Repr-Digest sha-256" {
			t.Fatalf("connections %d: err = %v, want an IntegrityError on the Repr-Digest", conns, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("a failed verification left %d files", len(entries))
		}
	}
}

type lyingDigest struct{ http.ResponseWriter }

func (l *lyingDigest) WriteHeader(code int) {
	if l.Header().Get("Repr-Digest") != "" {
		l.Header().Set("Repr-Digest", "sha-256=:"+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="+":")
	}
	l.ResponseWriter.WriteHeader(code)
}
