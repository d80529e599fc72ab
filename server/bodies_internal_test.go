package server

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor bounds every wait on the server in these tests.
const waitFor = 10 * time.Second

// bodyServer is a Server whose mux also has PUT /read, a handler that reads
// its content to the end and reports how that ended on reads.
type bodyServer struct {
	s     *Server
	addr  string
	url   string
	reads chan error
}

func newBodyServer(t *testing.T, cfg Config, now func() time.Time) *bodyServer {
	t.Helper()
	cfg.Root = t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg.Root, "f.txt"), []byte("file"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if now != nil {
		s.now = now
	}
	b := &bodyServer{s: s, reads: make(chan error, 16)}
	s.mux.HandleFunc("PUT /read", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		b.reads <- err
		if err == nil {
			io.WriteString(w, strings.Repeat("x", int(n)))
		}
	})
	ts := httptest.NewUnstartedServer(s)
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetHTTP1(true)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	t.Cleanup(func() { ts.Close(); s.Close() })
	b.url, b.addr = ts.URL, ts.Listener.Addr().String()
	return b
}

// dial opens a raw connection and sends head, the start of a request.
func (b *bodyServer) dial(t *testing.T, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// readErr waits for the handler's read to end and returns how it did.
func (b *bodyServer) readErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-b.reads:
		return err
	case <-time.After(waitFor):
		t.Fatal("the handler's read of a stalled body did not end")
		return nil
	}
}

// mustClose reads c until the server closes it; whatever response came
// first is returned.
func mustClose(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitFor))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the server did not close the connection: %v (read %q)", err, got)
	}
	return string(got)
}

// A body that stops arriving fails the handler's read with ErrBodyIdle,
// and the connection is closed: content sent in part, a body never sent,
// a chunked body cut between chunks.
func TestBodyIdleTimeout(t *testing.T) {
	b := newBodyServer(t, Config{BodyIdleTimeout: 20 * time.Millisecond}, nil)
	for name, head := range map[string]string{
		"partial":   "PUT /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nsome but not all",
		"never":     "PUT /read HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
		"chunked":   "PUT /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
		"mid-chunk": "PUT /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nhello",
		"continue":  "PUT /read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := b.dial(t, head)
			err := b.readErr(t)
			if !errors.Is(err, ErrBodyIdle) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("the handler's read ended with %v, want ErrBodyIdle", err)
			}
			mustClose(t, c)
		})
	}
}

// Content nobody reads is bounded too: net/http drains what is left of a
// small body after the handler, and that drain stops at the idle deadline.
func TestBodyIdleUnreadContent(t *testing.T) {
	b := newBodyServer(t, Config{BodyIdleTimeout: 20 * time.Millisecond}, nil)
	c := b.dial(t, "GET /f.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
	if got := mustClose(t, c); !strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Errorf("GET with a stalled body answered %q, want 200 and then the connection closed", got)
	}
}

// The idle deadline is pushed back before every read, so content that
// keeps arriving is never cut, however long it takes in all. The clock
// makes the deadline set when the request arrives expire at once: only
// the deadlines set by the reads let the body through. (Over HTTP/2 an
// expired deadline resets the stream whether or not a read is waiting, so
// this is HTTP/1.1's.)
func TestBodyIdleResetsOnRead(t *testing.T) {
	const idle = time.Hour
	var mu sync.Mutex
	calls := 0
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 1 {
			return time.Now().Add(-idle) // the request's first deadline: already past
		}
		return time.Now()
	}
	b := newBodyServer(t, Config{BodyIdleTimeout: idle}, nil)
	b.s.netNow = now
	{
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("PUT", b.url+"/read", pr)
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP1(true)
		res := make(chan *http.Response, 1)
		go func() {
			r, err := tr.RoundTrip(req)
			if err != nil {
				t.Error(err)
			}
			res <- r
		}()
		for range 5 {
			pw.Write([]byte("chunk"))
		}
		pw.Close()
		if err := b.readErr(t); err != nil {
			t.Errorf("the handler's read of a moving body ended with %v", err)
		}
		if r := <-res; r != nil {
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != 200 || len(body) != 25 {
				t.Errorf("%s with %d bytes, want 200 with 25", r.Status, len(body))
			}
		}
		tr.CloseIdleConnections()
	}
}

// Over HTTP/2 a stalled body ends its stream, not the connection.
func TestBodyIdleTimeoutHTTP2(t *testing.T) {
	b := newBodyServer(t, Config{BodyIdleTimeout: 20 * time.Millisecond}, nil)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest("PUT", b.url+"/read", pr)
	done := make(chan error, 1)
	go func() {
		r, err := tr.RoundTrip(req)
		if err == nil {
			_, err = io.ReadAll(r.Body)
			r.Body.Close()
		}
		done <- err
	}()
	pw.Write([]byte("a start"))
	if err := b.readErr(t); !errors.Is(err, ErrBodyIdle) {
		t.Errorf("the handler's read ended with %v, want ErrBodyIdle", err)
	}
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("the client's request did not end")
	}
	// The connection still serves.
	r, err := tr.RoundTrip(httptest.NewRequest("GET", b.url+"/f.txt", nil))
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("GET on the same connection: %v %v", r, err)
	}
	r.Body.Close()
}

// The handler's own deadline (a takeover sets it to now) ends a read at
// once, even though the idle deadline is far, and the read reports it as
// the plain deadline it is.
func TestBodyGuardHandlerDeadline(t *testing.T) {
	b := newBodyServer(t, Config{BodyIdleTimeout: time.Hour}, nil)
	started := make(chan struct{})
	var readErr error
	ended := make(chan struct{})
	b.s.mux.HandleFunc("PUT /interrupt", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		go func() {
			<-started
			rc.SetReadDeadline(time.Now())
		}()
		buf := make([]byte, 4)
		r.Body.Read(buf)
		close(started)
		_, readErr = io.Copy(io.Discard, r.Body)
		close(ended)
	})
	c := b.dial(t, "PUT /interrupt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabcd")
	select {
	case <-ended:
	case <-time.After(waitFor):
		t.Fatal("the handler's deadline did not end the read")
	}
	if !errors.Is(readErr, os.ErrDeadlineExceeded) || errors.Is(readErr, ErrBodyIdle) {
		t.Errorf("read ended with %v, want the deadline, not ErrBodyIdle", readErr)
	}
	mustClose(t, c)
}

// Once the content has ended, no idle deadline is left on the connection:
// a handler that goes on working for longer is not cut.
func TestBodyGuardLiftedAtEnd(t *testing.T) {
	b := newBodyServer(t, Config{BodyIdleTimeout: 20 * time.Millisecond}, nil)
	release := make(chan struct{})
	b.s.mux.HandleFunc("PUT /slow", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
			http.Error(w, "cancelled", 500)
			return
		}
		io.WriteString(w, "done")
	})
	c := b.dial(t, "PUT /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
	// Past the idle timeout from the last read, measured on the
	// connection: a read deadline left behind would have fired.
	time.Sleep(100 * time.Millisecond)
	close(release)
	c.SetReadDeadline(time.Now().Add(waitFor))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "done" {
		t.Errorf("%s %q, want 200 done", resp.Status, body)
	}
}

// Read deadlines are real time on the connection: the server's clock,
// which digests, expiry and rates follow and a test may set anywhere,
// does not move them. A clock two hours behind would have put the idle
// deadline of an hour in the past.
func TestBodyIdleFollowsWallClock(t *testing.T) {
	b := newBodyServer(t, Config{BodyIdleTimeout: time.Hour}, func() time.Time { return time.Now().Add(-2 * time.Hour) })
	// With 100-continue the content leaves only once the handler reads:
	// every byte of it comes from the connection, under its deadline.
	req, err := http.NewRequest("PUT", b.url+"/read", strings.NewReader("content"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: time.Hour, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(true)
	defer tr.CloseIdleConnections()
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if err := b.readErr(t); err != nil || res.StatusCode != 200 {
		t.Errorf("%s, the handler's read ended with %v; want 200 and the whole content", res.Status, err)
	}
}
