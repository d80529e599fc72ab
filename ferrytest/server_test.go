package ferrytest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
)

func TestContent(t *testing.T) {
	const size = 100_003
	a := ferrytest.NewServer(t, ferrytest.Size(size), ferrytest.Seed(7))
	b := ferrytest.NewServer(t, ferrytest.Size(size), ferrytest.Seed(7))
	c := ferrytest.NewServer(t, ferrytest.Size(size), ferrytest.Seed(8))

	all := bytesOf(t, a, 1, 0, size)
	if !bytes.Equal(all, bytesOf(t, b, 1, 0, size)) {
		t.Error("same seed, size and version: content differs")
	}
	if bytes.Equal(all, bytesOf(t, c, 1, 0, size)) {
		t.Error("different seeds: content is the same")
	}
	if bytes.Equal(all, bytesOf(t, a, 2, 0, size)) {
		t.Error("versions 1 and 2: content is the same")
	}
	for _, off := range []int64{0, 1, 7, 8, 9, 4095, 65535, 65536, size - 9, size - 1} {
		for _, n := range []int64{1, 3, 8, 15, 17, 1000} {
			n = min(n, size-off)
			if got := bytesOf(t, a, 1, off, n); !bytes.Equal(got, all[off:off+n]) {
				t.Errorf("ReadAt(%d bytes at %d) differs from the whole content", n, off)
			}
		}
	}

	p := make([]byte, 10)
	if n, err := a.Content(1).ReadAt(p, size-4); n != 4 || err != io.EOF || !bytes.Equal(p[:4], all[size-4:]) {
		t.Errorf("ReadAt(10 bytes at size-4) = %d, %v; want 4, EOF", n, err)
	}
	if n, err := a.Content(1).ReadAt(p, size); n != 0 || err != io.EOF {
		t.Errorf("ReadAt(at size) = %d, %v; want 0, EOF", n, err)
	}
	if _, err := a.Content(1).ReadAt(p, -1); err == nil {
		t.Error("ReadAt(at -1) succeeded")
	}

	sum := sha256.Sum256(all)
	if got, want := a.SHA256(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("SHA256() = %s, want %s", got, want)
	}
	if a.Size() != size {
		t.Errorf("Size() = %d, want %d", a.Size(), size)
	}
}

func TestContentPanicsOnUnknownVersion(t *testing.T) {
	srv := ferrytest.NewServer(t)
	for _, v := range []int{0, 3} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Content(%d) did not panic", v)
				}
			}()
			srv.Content(v)
		}()
	}
}

func TestLargeSize(t *testing.T) {
	const size = 1 << 30
	srv := ferrytest.NewServer(t, ferrytest.Size(size))
	resp, body := get(t, srv.Client(), srv.URL+"/file", "Range", "bytes=-100000")
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("status = %d, want 206", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", size-100000, size-1, size); got != want {
		t.Errorf("Content-Range = %q, want %q", got, want)
	}
	checkBody(t, body, bytesOf(t, srv, 1, size-100000, 100000))
}

func TestRange(t *testing.T) {
	const size = 1000
	tests := []struct {
		rng         string
		status      int
		start, n    int64 // body: bytes [start, start+n)
		contentRang string
	}{
		{"", 200, 0, size, ""},
		{"bytes=0-0", 206, 0, 1, "bytes 0-0/1000"},
		{"bytes=10-19", 206, 10, 10, "bytes 10-19/1000"},
		{"bytes=990-", 206, 990, 10, "bytes 990-999/1000"},
		{"bytes=-100", 206, 900, 100, "bytes 900-999/1000"},
		{"bytes=-5000", 206, 0, size, "bytes 0-999/1000"},
		{"bytes=500-5000", 206, 500, 500, "bytes 500-999/1000"},
		{"bytes=0-99999999999999999999999", 206, 0, size, "bytes 0-999/1000"},
		{"bytes=999-999", 206, 999, 1, "bytes 999-999/1000"},
		{"BYTES= 3 - 4 ", 206, 3, 2, "bytes 3-4/1000"},
		{"bytes=1000-", 416, 0, 0, "bytes */1000"},
		{"bytes=1000-2000", 416, 0, 0, "bytes */1000"},
		{"bytes=-0", 416, 0, 0, "bytes */1000"},
		{"bytes=0-1,5-6", 200, 0, size, ""},
		{"bytes=5-1", 200, 0, size, ""},
		{"bytes=x-1", 200, 0, size, ""},
		{"bytes=+1-2", 200, 0, size, ""},
		{"bytes=1", 200, 0, size, ""},
		{"items=0-1", 200, 0, size, ""},
	}
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		srv := newServer(ferrytest.Size(size))
		for _, tt := range tests {
			t.Run(tt.rng, func(t *testing.T) {
				var hdr []string
				if tt.rng != "" {
					hdr = []string{"Range", tt.rng}
				}
				resp, body := get(t, srv.Client(), srv.URL+"/file", hdr...)
				if resp.StatusCode != tt.status {
					t.Fatalf("GET Range: %q: status = %d, want %d", tt.rng, resp.StatusCode, tt.status)
				}
				if got := resp.Header.Get("Content-Range"); got != tt.contentRang {
					t.Errorf("Content-Range = %q, want %q", got, tt.contentRang)
				}
				if got, want := resp.ContentLength, tt.n; got != want {
					t.Errorf("ContentLength = %d, want %d", got, want)
				}
				if got := resp.Header.Get("Accept-Ranges"); got != "bytes" {
					t.Errorf("Accept-Ranges = %q, want bytes", got)
				}
				checkBody(t, body, bytesOf(t, srv, 1, tt.start, tt.n))
			})
		}
	})
}

func TestEmptyResource(t *testing.T) {
	srv := ferrytest.NewServer(t, ferrytest.Size(0))
	for _, rng := range []string{"bytes=0-", "bytes=-1", "bytes=0-0"} {
		resp, _ := get(t, srv.Client(), srv.URL+"/file", "Range", rng)
		if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */0" {
			t.Errorf("Range: %s: status %d, Content-Range %q; want 416, bytes */0", rng, resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	}
	resp, body := get(t, srv.Client(), srv.URL+"/file")
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("GET: status %d, %d bytes; want 200, 0 bytes", resp.StatusCode, len(body))
	}
}

func TestIfRange(t *testing.T) {
	const size = 1000
	lm := func(srv *ferrytest.Server) string { return srv.LastModified().Format(http.TimeFormat) }
	tests := []struct {
		name    string
		opts    []ferrytest.Option
		ifRange func(srv *ferrytest.Server) string
		status  int
	}{
		{"StrongETag", nil, func(s *ferrytest.Server) string { return s.ETag() }, 206},
		{"OtherETag", nil, func(*ferrytest.Server) string { return `"other"` }, 200},
		{"WeakFormOfStrongETag", nil, func(s *ferrytest.Server) string { return "W/" + s.ETag() }, 200},
		{"LastModified", nil, lm, 206},
		{"LastModifiedPlusOneSecond", nil, func(s *ferrytest.Server) string {
			return s.LastModified().Add(time.Second).Format(http.TimeFormat)
		}, 200},
		{"NotADate", nil, func(*ferrytest.Server) string { return "yesterday" }, 200},
		{"CustomETag", []ferrytest.Option{ferrytest.ETag("abc")}, func(*ferrytest.Server) string { return `"abc"` }, 206},
		{"WeakETag", []ferrytest.Option{ferrytest.WeakETag()}, func(s *ferrytest.Server) string { return s.ETag() }, 200},
		{"WeakETagStripped", []ferrytest.Option{ferrytest.WeakETag()}, func(s *ferrytest.Server) string {
			return strings.TrimPrefix(s.ETag(), "W/")
		}, 200},
		{"WeakETagLastModified", []ferrytest.Option{ferrytest.WeakETag()}, lm, 206},
		{"LastModifiedOnlyDate", []ferrytest.Option{ferrytest.LastModifiedOnly()}, lm, 206},
		{"LastModifiedOnlyETag", []ferrytest.Option{ferrytest.LastModifiedOnly()}, func(*ferrytest.Server) string {
			return `"v1"`
		}, 200},
		{"NoValidatorsDate", []ferrytest.Option{ferrytest.NoValidators()}, func(*ferrytest.Server) string {
			return time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
		}, 200},
		{"NoValidatorsNoIfRange", []ferrytest.Option{ferrytest.NoValidators()}, func(*ferrytest.Server) string { return "" }, 206},
	}
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				srv := newServer(append([]ferrytest.Option{ferrytest.Size(size)}, tt.opts...)...)
				ir := tt.ifRange(srv)
				resp, body := get(t, srv.Client(), srv.URL+"/file", "Range", "bytes=100-199", "If-Range", ir)
				if resp.StatusCode != tt.status {
					t.Fatalf("GET If-Range: %q: status = %d, want %d", ir, resp.StatusCode, tt.status)
				}
				if tt.status == 206 {
					checkBody(t, body, bytesOf(t, srv, 1, 100, 100))
				} else {
					checkBody(t, body, bytesOf(t, srv, 1, 0, size))
				}
			})
		}
	})
}

func TestValidators(t *testing.T) {
	tests := []struct {
		name       string
		opts       []ferrytest.Option
		etag       string // "*": any strong ETag
		lastMod    bool
		checkETags func(string) bool
	}{
		{"Default", nil, "*", true, nil},
		{"ETag", []ferrytest.Option{ferrytest.ETag("abc")}, `"abc"`, true, nil},
		{"WeakETag", []ferrytest.Option{ferrytest.ETag("abc"), ferrytest.WeakETag()}, `W/"abc"`, true, nil},
		{"NoValidators", []ferrytest.Option{ferrytest.NoValidators()}, "", false, nil},
		{"LastModifiedOnly", []ferrytest.Option{ferrytest.LastModifiedOnly()}, "", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ferrytest.NewServer(t, tt.opts...)
			for _, method := range []string{http.MethodHead, http.MethodGet} {
				resp, _, err := do(t, srv.Client(), method, srv.URL+"/file")
				if err != nil {
					t.Fatal(err)
				}
				etag := resp.Header.Get("ETag")
				switch {
				case tt.etag == "*":
					if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
						t.Errorf("%s: ETag = %q, want a strong ETag", method, etag)
					}
				case etag != tt.etag:
					t.Errorf("%s: ETag = %q, want %q", method, etag, tt.etag)
				}
				if etag != srv.ETag() {
					t.Errorf("%s: ETag = %q, Server.ETag() = %q", method, etag, srv.ETag())
				}
				lm := resp.Header.Get("Last-Modified")
				if (lm != "") != tt.lastMod {
					t.Fatalf("%s: Last-Modified = %q, want present: %v", method, lm, tt.lastMod)
				}
				if lm == "" {
					continue
				}
				lmt, err := http.ParseTime(lm)
				if err != nil || !lmt.Equal(srv.LastModified()) {
					t.Errorf("%s: Last-Modified = %q, Server.LastModified() = %v", method, lm, srv.LastModified())
				}
				date, err := http.ParseTime(resp.Header.Get("Date"))
				if err != nil || date.Sub(lmt) < time.Second {
					t.Errorf("%s: Date = %q is not 1s after Last-Modified %q", method, resp.Header.Get("Date"), lm)
				}
			}
		})
	}

	// The default ETag depends on the seed.
	a, b := ferrytest.NewServer(t, ferrytest.Seed(1)), ferrytest.NewServer(t, ferrytest.Seed(2))
	if a.ETag() == b.ETag() {
		t.Errorf("seeds 1 and 2 share the ETag %s", a.ETag())
	}
}

func TestHEAD(t *testing.T) {
	srv := ferrytest.NewServer(t, ferrytest.Size(12345))
	resp, body, err := do(t, srv.Client(), http.MethodHead, srv.URL+"/file", "Range", "bytes=0-9")
	if err != nil || len(body) != 0 {
		t.Fatalf("HEAD: body %d bytes, %v", len(body), err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != 12345 || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("HEAD = %d, Content-Length %d, Accept-Ranges %q; want 200, 12345, bytes",
			resp.StatusCode, resp.ContentLength, resp.Header.Get("Accept-Ranges"))
	}
}

func TestRefuseHEAD(t *testing.T) {
	for _, status := range []int{403, 405, 501} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			srv := ferrytest.NewServer(t, ferrytest.RefuseHEAD(status))
			resp, _, _ := do(t, srv.Client(), http.MethodHead, srv.URL+"/file")
			if resp.StatusCode != status {
				t.Errorf("HEAD status = %d, want %d", resp.StatusCode, status)
			}
			for _, h := range []string{"ETag", "Last-Modified", "Accept-Ranges"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("HEAD %s = %q, want none", h, v)
				}
			}
			if got := resp.Header.Get("Allow"); (status == 405) != (got == "GET") {
				t.Errorf("HEAD %d: Allow = %q", status, got)
			}
			resp, _ = get(t, srv.Client(), srv.URL+"/file", "Range", "bytes=0-0")
			if resp.StatusCode != 206 || resp.Header.Get("ETag") == "" {
				t.Errorf("GET = %d, ETag %q; want 206 with an ETag", resp.StatusCode, resp.Header.Get("ETag"))
			}
		})
	}
}

func TestAcceptRangesFalse(t *testing.T) {
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		srv := newServer(ferrytest.Size(1000), ferrytest.AcceptRanges(false))
		for _, rng := range []string{"", "bytes=0-9", "bytes=-1", "bytes=5000-"} {
			resp, body := get(t, srv.Client(), srv.URL+"/file", "Range", rng, "If-Range", srv.ETag())
			if resp.StatusCode != 200 {
				t.Errorf("Range: %q: status = %d, want 200", rng, resp.StatusCode)
			}
			if _, ok := resp.Header["Accept-Ranges"]; ok {
				t.Errorf("Range: %q: Accept-Ranges = %q, want none", rng, resp.Header.Get("Accept-Ranges"))
			}
			checkBody(t, body, bytesOf(t, srv, 1, 0, 1000))
		}
		resp, _, _ := do(t, srv.Client(), http.MethodHead, srv.URL+"/file")
		if _, ok := resp.Header["Accept-Ranges"]; ok {
			t.Errorf("HEAD: Accept-Ranges = %q, want none", resp.Header.Get("Accept-Ranges"))
		}
	})
}

func TestIgnoreRange(t *testing.T) {
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		srv := newServer(ferrytest.Size(1000), ferrytest.IgnoreRange())
		for _, rng := range []string{"bytes=0-9", "bytes=-1", "bytes=5000-"} {
			resp, body := get(t, srv.Client(), srv.URL+"/file", "Range", rng)
			if resp.StatusCode != 200 || resp.Header.Get("Accept-Ranges") != "bytes" {
				t.Errorf("Range: %q: status = %d, Accept-Ranges %q; want 200, bytes", rng, resp.StatusCode, resp.Header.Get("Accept-Ranges"))
			}
			checkBody(t, body, bytesOf(t, srv, 1, 0, 1000))
		}
	})
}

func TestChangeETagAfter(t *testing.T) {
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		srv := newServer(ferrytest.Size(1000), ferrytest.ChangedSize(1500), ferrytest.ChangeETagAfter(2),
			ferrytest.Status(500, 1))
		c, url := srv.Client(), srv.URL+"/file"
		etag1, lm1, sum1 := srv.ETag(), srv.LastModified(), srv.SHA256()

		// The GET answered by Status does not count.
		if resp, _ := get(t, c, url); resp.StatusCode != 500 {
			t.Fatalf("GET 1: status = %d, want 500", resp.StatusCode)
		}
		for i := range 2 {
			resp, body := get(t, c, url, "Range", "bytes=0-99", "If-Range", etag1)
			if resp.StatusCode != 206 || resp.Header.Get("ETag") != etag1 {
				t.Fatalf("GET %d: status %d, ETag %q; want 206, %s", i+2, resp.StatusCode, resp.Header.Get("ETag"), etag1)
			}
			checkBody(t, body, bytesOf(t, srv, 1, 0, 100))
		}
		if srv.Version() != 2 || srv.Size() != 1500 || srv.ETag() == etag1 || srv.SHA256() == sum1 || !srv.LastModified().After(lm1) {
			t.Errorf("after the change: Version %d, Size %d, ETag %s, LastModified %v", srv.Version(), srv.Size(), srv.ETag(), srv.LastModified())
		}

		// A resume with the old validator gets the whole new version.
		for _, ir := range []string{etag1, lm1.Format(http.TimeFormat)} {
			resp, body := get(t, c, url, "Range", "bytes=100-", "If-Range", ir)
			if resp.StatusCode != 200 {
				t.Fatalf("If-Range: %s: status = %d, want 200", ir, resp.StatusCode)
			}
			if got := resp.Header.Get("ETag"); got != srv.ETag() || got == etag1 {
				t.Errorf("ETag = %q, want %q", got, srv.ETag())
			}
			checkBody(t, body, bytesOf(t, srv, 2, 0, 1500))
			if bytes.Equal(body[:1000], bytesOf(t, srv, 1, 0, 1000)) {
				t.Error("version 2 has the bytes of version 1")
			}
		}
		resp, _, _ := do(t, c, http.MethodHead, url)
		if resp.ContentLength != 1500 || resp.Header.Get("ETag") != srv.ETag() {
			t.Errorf("HEAD: Content-Length %d, ETag %q; want 1500, %s", resp.ContentLength, resp.Header.Get("ETag"), srv.ETag())
		}
		resp, body := get(t, c, url, "Range", "bytes=1400-", "If-Range", srv.ETag())
		if resp.StatusCode != 206 {
			t.Fatalf("If-Range with the new ETag: status = %d, want 206", resp.StatusCode)
		}
		checkBody(t, body, bytesOf(t, srv, 2, 1400, 100))
	})
}

func TestSlowFirstByte(t *testing.T) {
	const d = 200 * time.Millisecond
	srv := ferrytest.NewServer(t, ferrytest.Size(10), ferrytest.SlowFirstByte(d))
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		start := time.Now()
		resp, _, err := do(t, srv.Client(), method, srv.URL+"/file")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v, %v", method, resp.Status, err)
		}
		if el := time.Since(start); el < d {
			t.Errorf("%s: headers after %v, want at least %v", method, el, d)
		}
	}

	// A client that gives up gets nothing, and the server stops waiting.
	slow := ferrytest.NewServer(t, ferrytest.SlowFirstByte(time.Hour))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, slow.URL+"/file", nil)
	if resp, err := slow.Client().Do(req); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			resp.Body.Close()
		}
		t.Errorf("GET with a 20ms deadline: %v, want deadline exceeded", err)
	}
	if reqs := slow.Requests(); len(reqs) != 1 || reqs[0].Status != 0 {
		t.Errorf("Requests() = %+v, want one request with no status", reqs)
	}
	closeWithin(t, slow, 5*time.Second)
}

// closeWithin fails the test if srv.Close takes longer than d.
func closeWithin(t *testing.T, srv *ferrytest.Server, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("Close took more than %v", d)
	}
}
