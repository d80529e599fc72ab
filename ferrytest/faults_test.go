package ferrytest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
)

func TestRetryAfter(t *testing.T) {
	date := time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
	tests := []struct {
		status int
		value  string
		times  int
	}{
		{429, "2", 1},
		{503, "120", 3},
		{503, date, 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s/%d", tt.status, tt.value, tt.times), func(t *testing.T) {
			srv := ferrytest.NewServer(t, ferrytest.Size(100), ferrytest.RetryAfter(tt.status, tt.value, tt.times))
			for i := range tt.times {
				method := []string{http.MethodHead, http.MethodGet}[i%2]
				resp, body, _ := do(t, srv.Client(), method, srv.URL+"/file")
				if resp.StatusCode != tt.status || resp.Header.Get("Retry-After") != tt.value {
					t.Errorf("%s %d: %d, Retry-After %q; want %d, %q", method, i+1, resp.StatusCode, resp.Header.Get("Retry-After"), tt.status, tt.value)
				}
				if resp.Header.Get("ETag") != "" || resp.Header.Get("Last-Modified") != "" {
					t.Errorf("%s %d: validators sent with %d", method, i+1, resp.StatusCode)
				}
				if method == http.MethodGet && len(body) == 0 {
					t.Errorf("GET %d: empty body", i+1)
				}
			}
			resp, body := get(t, srv.Client(), srv.URL+"/file")
			if resp.StatusCode != 200 || resp.Header.Get("Retry-After") != "" {
				t.Errorf("after %d: status %d, Retry-After %q; want 200, none", tt.times, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			checkBody(t, body, bytesOf(t, srv, 1, 0, 100))
		})
	}
}

func TestStatus(t *testing.T) {
	for _, code := range []int{404, 500} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := ferrytest.NewServer(t, ferrytest.Size(100), ferrytest.Status(code, 2))
			c, url := srv.Client(), srv.URL+"/file"
			if resp, _, _ := do(t, c, http.MethodHead, url); resp.StatusCode != 200 {
				t.Errorf("HEAD: status = %d, want 200", resp.StatusCode)
			}
			for i := range 2 {
				resp, body := get(t, c, url, "Range", "bytes=0-9")
				if resp.StatusCode != code || resp.Header.Get("ETag") != "" || len(body) == 0 {
					t.Errorf("GET %d: status %d, ETag %q, %d body bytes; want %d, none, some text", i+1, resp.StatusCode, resp.Header.Get("ETag"), len(body), code)
				}
			}
			resp, body := get(t, c, url, "Range", "bytes=0-9")
			if resp.StatusCode != 206 {
				t.Errorf("GET 3: status = %d, want 206", resp.StatusCode)
			}
			checkBody(t, body, bytesOf(t, srv, 1, 0, 10))
		})
	}
}

func TestDropAfter(t *testing.T) {
	const size = 300_000
	tests := []struct {
		name     string
		n        int64
		rng      string
		start    int64
		bodySize int64
		cut      bool
	}{
		{"Zero", 0, "", 0, size, true},
		{"Full", 100_000, "", 0, size, true},
		{"Ranged", 1000, "bytes=1000-", 1000, size - 1000, true},
		{"LastByte", size - 1, "", 0, size, true},
		{"ShortBody", 100, "bytes=0-99", 0, 100, false},
	}
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				srv := newServer(ferrytest.Size(size), ferrytest.DropAfter(tt.n, 2), ferrytest.Status(503, 1))
				c, url := srv.Client(), srv.URL+"/file"
				if resp, _ := get(t, c, url); resp.StatusCode != 503 {
					t.Fatalf("GET 1: status = %d, want 503 (Status comes first)", resp.StatusCode)
				}
				start := tt.start
				for i := range 2 {
					resp, body, err := do(t, c, http.MethodGet, url, "Range", tt.rng)
					if resp.ContentLength != tt.bodySize {
						t.Errorf("GET %d: Content-Length = %d, want %d", i+2, resp.ContentLength, tt.bodySize)
					}
					if !tt.cut {
						if err != nil {
							t.Errorf("GET %d: body read: %v, want no error", i+2, err)
						}
						checkBody(t, body, bytesOf(t, srv, 1, start, tt.bodySize))
						continue
					}
					if err == nil || int64(len(body)) != tt.n {
						t.Errorf("GET %d: read %d bytes, err %v; want %d bytes and an error", i+2, len(body), err, tt.n)
					}
					checkBody(t, body, bytesOf(t, srv, 1, start, int64(len(body))))
				}
				resp, body := get(t, c, url, "Range", tt.rng)
				checkBody(t, body, bytesOf(t, srv, 1, start, tt.bodySize))
				if resp.ContentLength != tt.bodySize {
					t.Errorf("GET 4: Content-Length = %d, want %d", resp.ContentLength, tt.bodySize)
				}
				if tt.cut {
					reqs := srv.Requests()
					if got := reqs[1].BodyBytes; got != tt.n {
						t.Errorf("Requests()[1].BodyBytes = %d, want %d", got, tt.n)
					}
				}
			})
		}
	})
}

func TestDropAfterHTTP1Error(t *testing.T) {
	srv := ferrytest.NewServer(t, ferrytest.DropAfter(10, 1))
	_, _, err := do(t, srv.Client(), http.MethodGet, srv.URL+"/file")
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("body read error = %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

// timedRead reads body, returning the bytes and the longest wait for a read.
func timedRead(body io.Reader) ([]byte, time.Duration, error) {
	var buf bytes.Buffer
	var longest time.Duration
	p := make([]byte, 32<<10)
	for {
		start := time.Now()
		n, err := body.Read(p)
		longest = max(longest, time.Since(start))
		buf.Write(p[:n])
		if err == io.EOF {
			return buf.Bytes(), longest, nil
		}
		if err != nil {
			return buf.Bytes(), longest, err
		}
	}
}

func TestStall(t *testing.T) {
	const (
		size = 200_000
		d    = 300 * time.Millisecond
	)
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		srv := newServer(ferrytest.Size(size), ferrytest.Stall(50_000, d, 1))
		c, url := srv.Client(), srv.URL+"/file"
		for i, wantStall := range []bool{true, false} {
			resp, err := c.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			// Read up to the stall point first: its bytes arrive at once.
			head := make([]byte, 50_000)
			if _, err := io.ReadFull(resp.Body, head); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			rest, longest, err := timedRead(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("GET %d: %v", i+1, err)
			}
			checkBody(t, append(head, rest...), bytesOf(t, srv, 1, 0, size))
			if wantStall && time.Since(start) < d-10*time.Millisecond {
				t.Errorf("GET %d: rest of the body after %v, want a stall of %v", i+1, time.Since(start), d)
			}
			if !wantStall && longest >= d {
				t.Errorf("GET %d: a read waited %v with no stall", i+1, longest)
			}
		}
	})
}

func TestStallCancel(t *testing.T) {
	srv := ferrytest.NewServer(t, ferrytest.Size(100_000), ferrytest.Stall(10, time.Hour, 1))
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/file", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 10)
	if _, err := io.ReadFull(resp.Body, p); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// Close waits for the handler; it must not wait an hour.
	closeWithin(t, srv, 5*time.Second)
}

func TestThrottle(t *testing.T) {
	const (
		size = 60_000
		rate = 200_000 // bytes/s: the body takes 300ms
	)
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		srv := newServer(ferrytest.Size(size), ferrytest.Throttle(rate))
		start := time.Now()
		resp, err := srv.Client().Get(srv.URL + "/file")
		if err != nil {
			t.Fatal(err)
		}
		body, longest, err := timedRead(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		checkBody(t, body, bytesOf(t, srv, 1, 0, size))
		if min := time.Duration(size-rate/10) * time.Second / rate; el < min {
			t.Errorf("%d bytes at %d B/s took %v, want at least %v", size, rate, el, min)
		}
		if longest > 250*time.Millisecond {
			t.Errorf("a read waited %v; a throttled body keeps moving", longest)
		}
	})
}

func TestWrongContentRange(t *testing.T) {
	const size = 1000
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		srv := newServer(ferrytest.Size(size), ferrytest.WrongContentRange(2))
		c, url := srv.Client(), srv.URL+"/file"
		// A 200 does not use up the count.
		if resp, _ := get(t, c, url); resp.StatusCode != 200 || resp.Header.Get("Content-Range") != "" {
			t.Fatalf("GET: status %d, Content-Range %q", resp.StatusCode, resp.Header.Get("Content-Range"))
		}
		tests := []struct{ rng, want string }{
			{"bytes=100-199", "bytes 101-200/1000"},
			{"bytes=-10", "bytes 991-1000/1000"},
			{"bytes=100-199", "bytes 100-199/1000"},
		}
		for _, tt := range tests {
			resp, body := get(t, c, url, "Range", tt.rng)
			if got := resp.Header.Get("Content-Range"); resp.StatusCode != 206 || got != tt.want {
				t.Errorf("Range: %s: %d, Content-Range %q; want 206, %q", tt.rng, resp.StatusCode, got, tt.want)
			}
			start := int64(100)
			if tt.rng == "bytes=-10" {
				start = size - 10
			}
			if want := int64(len(body)); resp.ContentLength != want {
				t.Errorf("Content-Length = %d, body %d bytes", resp.ContentLength, want)
			}
			checkBody(t, body, bytesOf(t, srv, 1, start, int64(len(body))))
		}
	})
}

func TestGzipRanged(t *testing.T) {
	const size = 100_000
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		srv := newServer(ferrytest.Size(size), ferrytest.GzipRanged())
		c, url := srv.Client(), srv.URL+"/file"
		resp, raw := get(t, c, url, "Range", "bytes=1000-50999")
		if resp.StatusCode != 206 || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("status %d, Content-Encoding %q; want 206, gzip", resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		if got, want := resp.Header.Get("Content-Range"), "bytes 1000-50999/100000"; got != want {
			t.Errorf("Content-Range = %q, want %q", got, want)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		checkBody(t, decoded, bytesOf(t, srv, 1, 1000, 50000))
		if reqs := srv.Requests(); reqs[0].BodyBytes != int64(len(raw)) {
			t.Errorf("BodyBytes = %d, want the %d compressed bytes", reqs[0].BodyBytes, len(raw))
		}

		resp, body := get(t, c, url)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("full GET: status %d, Content-Encoding %q; want 200, none", resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		checkBody(t, body, bytesOf(t, srv, 1, 0, size))
	})
}

func TestRedirect(t *testing.T) {
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		srv := newServer(ferrytest.Size(100), ferrytest.Redirect(3))
		c := *srv.Client()
		var hops []string
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			hops = append(hops, req.URL.Path)
			return nil
		}
		resp, body := get(t, &c, srv.URL+"/redirect/3")
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d, want 200", resp.StatusCode)
		}
		checkBody(t, body, bytesOf(t, srv, 1, 0, 100))
		if got, want := fmt.Sprint(hops), "[/redirect/2 /redirect/1 /file]"; got != want {
			t.Errorf("redirects = %s, want %s", got, want)
		}
		var statuses []int
		for _, r := range srv.Requests() {
			statuses = append(statuses, r.Status)
		}
		if got, want := fmt.Sprint(statuses), "[302 302 302 200]"; got != want {
			t.Errorf("statuses = %s, want %s", got, want)
		}

		// Outside the chain, /redirect/ paths serve the resource.
		if resp, _ := get(t, srv.Client(), srv.URL+"/redirect/4"); resp.StatusCode != 200 || resp.Request.URL.Path != "/redirect/4" {
			t.Errorf("GET /redirect/4: %d from %s", resp.StatusCode, resp.Request.URL.Path)
		}
	})
}

func TestHandler(t *testing.T) {
	teapot := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/teapot" {
				w.WriteHeader(http.StatusTeapot)
				return
			}
			w.Header().Set("X-Outer", "1")
			next.ServeHTTP(w, r)
		})
	}
	inner := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Inner", w.Header().Get("X-Outer"))
			next.ServeHTTP(w, r)
		})
	}
	srv := ferrytest.NewServer(t, ferrytest.Size(10), ferrytest.Handler(teapot), ferrytest.Handler(inner))
	resp, _ := get(t, srv.Client(), srv.URL+"/teapot")
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("GET /teapot: status = %d, want 418", resp.StatusCode)
	}
	resp, body := get(t, srv.Client(), srv.URL+"/file")
	if resp.Header.Get("X-Inner") != "1" {
		t.Errorf("X-Inner = %q: the first Handler is not the outermost", resp.Header.Get("X-Inner"))
	}
	checkBody(t, body, bytesOf(t, srv, 1, 0, 10))
	if reqs := srv.Requests(); len(reqs) != 2 || reqs[0].Status != http.StatusTeapot {
		t.Errorf("Requests() = %+v, want the 418 logged first", reqs)
	}
}
