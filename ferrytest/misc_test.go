package ferrytest_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/ferrytest"
)

func TestHealthz(t *testing.T) {
	srv := ferrytest.NewServer(t, ferrytest.Status(500, 5), ferrytest.RetryAfter(503, "1", 5))
	resp, body := get(t, srv.Client(), srv.URL+"/healthz")
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", resp.StatusCode, body)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv := ferrytest.NewServer(t)
	resp, _, _ := do(t, srv.Client(), http.MethodPost, srv.URL+"/file")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST = %d, Allow %q; want 405, \"GET, HEAD\"", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestRequests(t *testing.T) {
	run(t, func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server) {
		srv := newServer(ferrytest.Size(1000))
		c := srv.Client()
		resp, _, _ := do(t, c, http.MethodHead, srv.URL+"/a")
		proto := resp.Proto
		get(t, c, srv.URL+"/b?x=1", "Range", "bytes=10-19", "If-Range", srv.ETag(), "Accept-Encoding", "identity")
		get(t, c, srv.URL+"/c", "Range", "bytes=2000-")
		want := []ferrytest.Request{
			{Method: "HEAD", Path: "/a", Proto: proto, Status: 200},
			{Method: "GET", Path: "/b", Range: "bytes=10-19", IfRange: srv.ETag(), AcceptEncoding: "identity", Proto: proto, Status: 206, BodyBytes: 10},
			{Method: "GET", Path: "/c", Range: "bytes=2000-", Proto: proto, Status: 416},
		}
		got := srv.Requests()
		if len(got) != len(want) {
			t.Fatalf("Requests() = %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("Requests()[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}

// fatalTB records a Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  ferrytest.Option
	}{
		{"Size", ferrytest.Size(-1)},
		{"ChangedSize", ferrytest.ChangedSize(-1)},
		{"ETagQuote", ferrytest.ETag(`a"b`)},
		{"ETagEmpty", ferrytest.ETag("")},
		{"ChangeETagAfter", ferrytest.ChangeETagAfter(-1)},
		{"RefuseHEAD", ferrytest.RefuseHEAD(99)},
		{"RetryAfter", ferrytest.RetryAfter(1000, "1", 1)},
		{"Status", ferrytest.Status(600, 1)},
		{"DropAfter", ferrytest.DropAfter(-1, 1)},
		{"Stall", ferrytest.Stall(0, -1, 1)},
		{"Throttle", ferrytest.Throttle(0)},
		{"WrongContentRange", ferrytest.WrongContentRange(-1)},
		{"Redirect", ferrytest.Redirect(-1)},
		{"Handler", ferrytest.Handler(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := &fatalTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				ferrytest.NewServer(tb, tt.opt)
			}()
			<-done
			if !strings.Contains(tb.msg, tt.name[:4]) {
				t.Errorf("NewServer with a bad %s: Fatalf(%q)", tt.name, tb.msg)
			}
		})
	}
}

func FuzzRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-5", "bytes=10-", "bytes=5-1", "bytes=0-1,2-3", "bytes=99999999999999999999-", "bYtes = 1-2"} {
		f.Add(s)
	}
	srv := ferrytest.NewServer(f, ferrytest.Size(100))
	c := srv.Client()
	f.Fuzz(func(t *testing.T, rng string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/file", nil)
		if err != nil {
			t.Skip()
		}
		req.Header["Range"] = []string{rng}
		resp, err := c.Do(req)
		if err != nil {
			t.Skip() // a header the client refuses to send
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case 200, 416:
		case 206:
			var a, b, size int64
			if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &a, &b, &size); err != nil ||
				a < 0 || b < a || b >= size || size != 100 || resp.ContentLength != b-a+1 {
				t.Errorf("Range: %q: Content-Range %q, Content-Length %d", rng, resp.Header.Get("Content-Range"), resp.ContentLength)
			}
		default:
			t.Errorf("Range: %q: status %d", rng, resp.StatusCode)
		}
	})
}

func BenchmarkDownload(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			const size = 256 << 20
			srv := ferrytest.NewServer(b, append([]ferrytest.Option{ferrytest.Size(size)}, m.opts...)...)
			b.SetBytes(size)
			for b.Loop() {
				resp, err := srv.Client().Get(srv.URL + "/file")
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, resp.Body); n != size || err != nil {
					b.Fatalf("read %d bytes, %v", n, err)
				}
				resp.Body.Close()
			}
		})
	}
}

func BenchmarkContent(b *testing.B) {
	srv := ferrytest.NewServer(b, ferrytest.Size(1<<30))
	p := make([]byte, 1<<20)
	b.SetBytes(int64(len(p)))
	for i := 0; b.Loop(); i++ {
		srv.Content(1).ReadAt(p, int64(i%1024)<<20)
	}
}
