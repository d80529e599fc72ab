package server_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server"
)

func reprDigest(alg string, data []byte) string {
	var sum []byte
	switch alg {
	case "sha-256":
		s := sha256.Sum256(data)
		sum = s[:]
	case "sha-512":
		s := sha512.Sum512(data)
		sum = s[:]
	default:
		panic(alg)
	}
	return alg + "=:" + base64.StdEncoding.EncodeToString(sum) + ":"
}

func TestReprDigest(t *testing.T) {
	data := ferrytest.Bytes(fileSize, 9)
	tests := []struct {
		name    string
		method  string
		headers []string
		status  int
		alg     string // "": no Repr-Digest
	}{
		{"sha-256", "GET", []string{"Want-Repr-Digest: sha-256=10"}, 200, "sha-256"},
		{"sha-512", "GET", []string{"Want-Repr-Digest: sha-512=3"}, 200, "sha-512"},
		{"higher preference wins", "GET", []string{"Want-Repr-Digest: sha-256=1, sha-512=3"}, 200, "sha-512"},
		{"tie goes to sha-256", "GET", []string{"Want-Repr-Digest: sha-512=5, sha-256=5"}, 200, "sha-256"},
		{"zero is not acceptable", "GET", []string{"Want-Repr-Digest: sha-256=0, sha-512=2"}, 200, "sha-512"},
		{"unsupported skipped", "GET", []string{"Want-Repr-Digest: md5=10, unixsum=9, sha-256=1"}, 200, "sha-256"},
		{"two field lines", "GET", []string{"Want-Repr-Digest: sha-256=1", "Want-Repr-Digest: sha-512=2"}, 200, "sha-512"},
		{"with parameters", "GET", []string{"Want-Repr-Digest: sha-256=4;x=y"}, 200, "sha-256"},
		{"range", "GET", []string{"Want-Repr-Digest: sha-256=10", "Range: bytes=10-19"}, 206, "sha-256"},
		{"range sha-512", "GET", []string{"Want-Repr-Digest: sha-512=10", "Range: bytes=-5"}, 206, "sha-512"},
		{"head", "HEAD", []string{"Want-Repr-Digest: sha-256=10"}, 200, "sha-256"},
		{"head range", "HEAD", []string{"Want-Repr-Digest: sha-512=1", "Range: bytes=0-0"}, 206, "sha-512"},
		{"all zero", "GET", []string{"Want-Repr-Digest: sha-256=0, sha-512=0"}, 200, ""},
		{"only unsupported", "GET", []string{"Want-Repr-Digest: md5=10"}, 200, ""},
		{"malformed", "GET", []string{"Want-Repr-Digest: sha-256=10,"}, 200, ""},
		{"not an integer", "GET", []string{"Want-Repr-Digest: sha-256=?1"}, 200, ""},
		{"not asked", "GET", nil, 200, ""},
		{"not on 416", "GET", []string{"Want-Repr-Digest: sha-256=10", "Range: bytes=999999-"}, 416, ""},
	}
	run(t, func(t *testing.T, e *env) {
		e.write(t, "d.bin", data)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, _ := e.do(t, tt.method, "/d.bin", tt.headers...)
				if resp.StatusCode != tt.status {
					t.Fatalf("%s %q: status = %d, want %d", tt.method, tt.headers, resp.StatusCode, tt.status)
				}
				want := ""
				if tt.alg != "" {
					want = reprDigest(tt.alg, data)
				}
				if got := resp.Header.Get("Repr-Digest"); got != want {
					t.Errorf("%s %q: Repr-Digest = %q, want %q", tt.method, tt.headers, got, want)
				}
			})
		}
		t.Run("not on 304", func(t *testing.T) {
			head, _ := e.do(t, "HEAD", "/d.bin")
			resp, _ := e.do(t, "GET", "/d.bin", "Want-Repr-Digest: sha-256=10", "If-None-Match: "+head.Header.Get("ETag"))
			if resp.StatusCode != 304 || resp.Header.Get("Repr-Digest") != "" {
				t.Errorf("GET If-None-Match = %d with Repr-Digest %q, want 304 without", resp.StatusCode, resp.Header.Get("Repr-Digest"))
			}
		})
	})
}

// TestReprDigestHashedOnce checks that a segmented client asking for the
// digest on every range costs one pass over the file.
func TestReprDigestHashedOnce(t *testing.T) {
	const (
		size     = 4 << 20
		segments = 16
	)
	// Every version is old enough to be cached when it is hashed.
	later := func() time.Time { return time.Now().Add(time.Hour) }
	runWith(t, func(cfg server.Config) server.Config { return server.WithClock(cfg, later) }, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(size, 10)
		e.write(t, "big.bin", data)

		// fetch requests every segment at once, checking bodies and digests.
		fetch := func(alg string, data []byte) {
			t.Helper()
			want := reprDigest(alg, data)
			var wg sync.WaitGroup
			errs := make(chan error, segments)
			for i := range segments {
				wg.Go(func() {
					start, end := i*size/segments, (i+1)*size/segments-1
					req, _ := http.NewRequest("GET", e.url+"/big.bin", nil)
					req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end))
					req.Header.Set("Want-Repr-Digest", alg+"=10")
					resp, err := e.client.Do(req)
					if err != nil {
						errs <- err
						return
					}
					resp.Body.Close()
					if resp.StatusCode != 206 {
						errs <- fmt.Errorf("segment %d: status = %d, want 206", i, resp.StatusCode)
					} else if got := resp.Header.Get("Repr-Digest"); got != want {
						errs <- fmt.Errorf("segment %d: Repr-Digest = %q, want %q", i, got, want)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		}
		hashes := func(want int64) {
			t.Helper()
			if got := server.HashCount(e.srv); got != want {
				t.Errorf("digest computations = %d, want %d", got, want)
			}
		}

		fetch("sha-256", data)
		hashes(1)
		fetch("sha-256", data)
		hashes(1)
		fetch("sha-512", data)
		hashes(2)

		// A new version is a new ETag, so a new key.
		v2 := ferrytest.Bytes(size, 11)
		e.write(t, "big.bin", v2)
		fetch("sha-256", v2)
		hashes(3)
	})
}

// rewriteInPlace overwrites the file at p with data of the same length
// through the same inode, then puts its modification time back, as a tool
// that preserves times (rsync --inplace -t, cp -p over it) does.
func rewriteInPlace(t *testing.T, p string, data []byte) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != fi.Size() || !after.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("rewrite changed size or mtime: %d %v, was %d %v", after.Size(), after.ModTime(), fi.Size(), fi.ModTime())
	}
}

// TestDigestFollowsInPlaceRewrite rewrites a file in place keeping its
// size and modification time: the next response carries the new version's
// digest and a new ETag, so a resuming client's If-Range no longer matches.
func TestDigestFollowsInPlaceRewrite(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		v1, v2 := ferrytest.Bytes(fileSize, 21), ferrytest.Bytes(fileSize, 22)
		p := e.write(t, "same.bin", v1)
		resp, _ := e.do(t, "GET", "/same.bin", "Want-Repr-Digest: sha-256=1")
		if got, want := resp.Header.Get("Repr-Digest"), reprDigest("sha-256", v1); got != want {
			t.Fatalf("first Repr-Digest = %q, want %q", got, want)
		}
		etag1 := resp.Header.Get("ETag")

		rewriteInPlace(t, p, v2)
		resp, body := e.do(t, "GET", "/same.bin", "Want-Repr-Digest: sha-256=1")
		mustEqualBytes(t, "GET after the rewrite", body, v2)
		if got, want := resp.Header.Get("Repr-Digest"), reprDigest("sha-256", v2); got != want {
			t.Errorf("Repr-Digest after an in-place rewrite = %q, want %q (the new version's)", got, want)
		}
		if etag2 := resp.Header.Get("ETag"); etag2 == etag1 {
			t.Errorf("ETag after an in-place rewrite = %s, unchanged", etag2)
		}
		resp, body = e.do(t, "GET", "/same.bin", "Range: bytes=0-9", "If-Range: "+etag1)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("Range with the old ETag in If-Range: status = %d, want 200 (the whole new version)", resp.StatusCode)
		}
		mustEqualBytes(t, "GET with the old If-Range", body, v2)
	})
}
