package pump

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// trickle returns its data a few bytes per Read, then err.
type trickle struct {
	data []byte
	step int
	err  error
}

func (t *trickle) Read(p []byte) (int, error) {
	if len(t.data) == 0 {
		return 0, t.err
	}
	n := copy(p[:min(len(p), t.step)], t.data)
	t.data = t.data[n:]
	return n, nil
}

func newWatchdog(t *testing.T) *watchdog.Watchdog {
	_, cancel := context.WithCancelCause(context.Background())
	wd := watchdog.Start(cancel, time.Minute, 0, 0)
	t.Cleanup(func() { wd.Done(); cancel(nil) })
	return wd
}

func TestBodyBatchesSmallReads(t *testing.T) {
	data := make([]byte, 1<<20+123)
	rand.Read(data)
	var got bytes.Buffer
	var pieces []int
	n, err := Body(context.Background(), &trickle{data: data, step: 1500, err: io.EOF}, make([]byte, 256<<10),
		func(p []byte) error {
			pieces = append(pieces, len(p))
			got.Write(p)
			return nil
		}, Options{Watchdog: newWatchdog(t)})
	if err != nil || n != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("Body = %d, %v; got %d bytes, equal %v", n, err, got.Len(), bytes.Equal(got.Bytes(), data))
	}
	// Reads of 1500 bytes come back at once here: every piece but the
	// last is a full batch (the delay can cut one short on a slow machine).
	short := 0
	for _, p := range pieces[:len(pieces)-1] {
		if p < batchBytes {
			short++
		}
	}
	if short > len(pieces)/4 {
		t.Errorf("%d of %d pieces shorter than %d bytes: %v", short, len(pieces), batchBytes, pieces)
	}
}

func TestBodyHandsOnWhatCameBeforeABreak(t *testing.T) {
	broke := errors.New("connection reset")
	var got int
	n, err := Body(context.Background(), &trickle{data: make([]byte, 5000), step: 1000, err: broke}, make([]byte, 64<<10),
		func(p []byte) error { got += len(p); return nil }, Options{Watchdog: newWatchdog(t)})
	var tr *transfer.Transient
	if !errors.As(err, &tr) || !errors.Is(err, broke) {
		t.Fatalf("err = %v, want a transient connection reset", err)
	}
	if n != 5000 || got != 5000 {
		t.Fatalf("n = %d, sink got %d, want 5000 both", n, got)
	}
}

func TestBodySinkError(t *testing.T) {
	full := errors.New("disk full")
	n, err := Body(context.Background(), &trickle{data: make([]byte, 5000), step: 1000, err: io.EOF}, make([]byte, 64<<10),
		func(p []byte) error { return full }, Options{Watchdog: newWatchdog(t)})
	if !errors.Is(err, full) || n != 0 {
		t.Fatalf("Body = %d, %v; want 0, disk full", n, err)
	}
}

// marks records the low-water marks set, and calls through.
type marks struct {
	mu  sync.Mutex
	set []int
}

func (m *marks) watch(t *testing.T) {
	old := setRecvLowat
	setRecvLowat = func(c net.Conn, n int) bool {
		ok := old(c, n)
		if ok {
			m.mu.Lock()
			m.set = append(m.set, n)
			m.mu.Unlock()
		}
		return ok
	}
	t.Cleanup(func() { setRecvLowat = old })
}

func (m *marks) max() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	most := 0
	for _, n := range m.set {
		most = max(most, n)
	}
	return most
}

func (m *marks) last() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.set) == 0 {
		return 1
	}
	return m.set[len(m.set)-1]
}

// TestWakeupNeverWaitsForTheTail reads bodies over real loopback
// connections whose last bytes come late, in a piece far smaller than any
// mark, on a connection that stays open: a mark above what is left would
// wait for bytes that never come. The connection is then reused for a small
// response, which a mark left behind would also hold up. Over plain HTTP/1.1
// and over TLS, whose reader holds part of a record the socket no longer
// has.
func TestWakeupNeverWaitsForTheTail(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := "http"
		if tls {
			name = "https"
		}
		t.Run(name, func(t *testing.T) { testWakeupTail(t, tls) })
	}
}

func testWakeupTail(t *testing.T, useTLS bool) {
	const size = 8 << 20
	const tail = 100
	data := make([]byte, size)
	rand.Read(data)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			w.Header().Set("Content-Length", "2")
			w.Write([]byte("ok"))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		// Paced at about 40 MB/s, so that the reader sees a rate to
		// set marks by (loopback would be over before it measured one).
		const piece = 256 << 10
		for off := 0; off < size-tail; off += piece {
			w.Write(data[off:min(off+piece, size-tail)])
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		w.Write(data[size-tail:])
	}))
	if useTLS {
		srv.StartTLS() // HTTP/1.1: httptest does not enable HTTP/2
	} else {
		srv.Start()
	}
	defer srv.Close()
	var m marks
	m.watch(t)
	client := srv.Client()

	get := func(path string) ([]byte, net.Conn, time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		rec := transfer.NewRecorder(req)
		req = req.WithContext(rec.WithContext(ctx))
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.ProtoMajor != 1 {
			t.Fatalf("GET %s over %s, want HTTP/1.1", path, resp.Proto)
		}
		defer resp.Body.Close()
		var got bytes.Buffer
		if _, err := Body(ctx, resp.Body, make([]byte, 256<<10), func(p []byte) error { got.Write(p); return nil },
			Options{Watchdog: newWatchdog(t), Wakeup: NewWakeup(rec, resp, resp.ContentLength)}); err != nil {
			t.Fatalf("GET %s: body: %v (after %v)", path, err, time.Since(start))
		}
		return got.Bytes(), rec.Conn(), time.Since(start)
	}

	for i := range 3 {
		got, c1, took := get("/big")
		if !bytes.Equal(got, data) {
			t.Fatalf("round %d: body differs (%d bytes)", i, len(got))
		}
		if took > 5*time.Second {
			t.Fatalf("round %d: %v for a body whose tail came after 200 ms", i, took)
		}
		if m.last() != 1 {
			t.Fatalf("round %d: the mark left on the connection is %d, want 1", i, m.last())
		}
		small, c2, took := get("/small")
		if string(small) != "ok" || took > 5*time.Second {
			t.Fatalf("round %d: small response %q in %v", i, small, took)
		}
		if c1 != c2 {
			t.Logf("round %d: the small request got another connection", i)
		}
	}
	if most := m.max(); most < minLowat {
		t.Fatalf("the largest mark set was %d: the reads were never paced", most)
	}
	t.Logf("marks set: up to %d bytes", m.max())
}

// TestWakeupFollowsARateThatFalls sends a body fast, then a few bytes at a
// time, then fast again: the trickle must reach the reader as it comes (a
// mark set for the fast part would hold it back until the rest arrived,
// and a reader that sees nothing for the idle timeout gives up).
func TestWakeupFollowsARateThatFalls(t *testing.T) {
	const (
		fast    = 4 << 20
		drips   = 20
		drip    = 100
		rest    = 1 << 20
		size    = fast + drips*drip + rest
		piece   = 256 << 10
		dripGap = 100 * time.Millisecond
	)
	data := make([]byte, size)
	rand.Read(data)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		f := w.(http.Flusher)
		for off := 0; off < fast; off += piece {
			w.Write(data[off : off+piece])
			f.Flush()
			time.Sleep(5 * time.Millisecond)
		}
		for i := range drips {
			time.Sleep(dripGap)
			w.Write(data[fast+i*drip : fast+(i+1)*drip])
			f.Flush()
		}
		w.Write(data[fast+drips*drip:])
	}))
	defer srv.Close()
	var m marks
	m.watch(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	rec := transfer.NewRecorder(req)
	req = req.WithContext(rec.WithContext(ctx))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got bytes.Buffer
	small := 0 // pieces of the trickle handed on by themselves
	if _, err := Body(ctx, resp.Body, make([]byte, 256<<10), func(p []byte) error {
		if len(p) <= drip*2 {
			small++
		}
		got.Write(p)
		return nil
	}, Options{Watchdog: newWatchdog(t), Wakeup: NewWakeup(rec, resp, resp.ContentLength)}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("body differs (%d bytes)", got.Len())
	}
	if m.max() < minLowat {
		t.Fatalf("the largest mark set was %d: the fast part was never paced", m.max())
	}
	if small < drips/2 {
		t.Fatalf("%d of %d trickled pieces reached the reader as they came", small, drips)
	}
	t.Logf("%d of %d trickled pieces handed on as they came; marks up to %d", small, drips, m.max())
}

// budget lets through the first n bytes, then fails: a cancelled wait.
type budget struct{ n int }

var errCancelled = errors.New("cancelled while waiting for the budget")

func (b *budget) Burst() int { return 4000 }
func (b *budget) WaitN(_ context.Context, n int) error {
	if n > b.n {
		return errCancelled
	}
	b.n -= n
	return nil
}

func TestBodyKeepsWhatWasPaidForWhenTheBudgetFails(t *testing.T) {
	var got int
	n, err := Body(context.Background(), &trickle{data: make([]byte, 50000), step: 1000, err: io.EOF}, make([]byte, 64<<10),
		func(p []byte) error { got += len(p); return nil },
		Options{Watchdog: newWatchdog(t), Limiter: &budget{n: 5000}})
	if !errors.Is(err, errCancelled) {
		t.Fatalf("err = %v, want the budget's error", err)
	}
	if n != 5000 || got != 5000 {
		t.Fatalf("n = %d, sink got %d, want the 5000 bytes paid for", n, got)
	}
}
