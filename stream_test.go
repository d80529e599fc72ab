package ferry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server/stream"
)

// streamOrigin serves live streams into a temporary directory, running
// procs over each; HTTP/2 is spoken in cleartext (h2c) when h2 is set.
func streamOrigin(t *testing.T, h2 bool, procs stream.ProcessorFactory) (url, dir string) {
	t.Helper()
	dir = t.TempDir()
	h, err := stream.New(stream.Config{Dir: dir, Processors: procs, AckEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	if h2 {
		ts.Config.Protocols = new(http.Protocols)
		ts.Config.Protocols.SetHTTP1(true)
		ts.Config.Protocols.SetUnencryptedHTTP2(true)
	}
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() { h.Close() })
	return ts.URL, dir
}

// counting replies {"type":"got","total":N} after every read: one reply
// per piece of the stream that reached it.
func counting(string, *http.Request) stream.Processor {
	return stream.ProcessorFunc(func(ctx context.Context, r io.Reader, emit func(any)) error {
		buf := make([]byte, 64<<10)
		var total int64
		for {
			n, err := r.Read(buf)
			total += int64(n)
			if n > 0 {
				emit(map[string]any{"type": "got", "total": total})
			}
			if err != nil {
				return err
			}
		}
	})
}

// replies collects a stream's replies.
type replies struct {
	mu  sync.Mutex
	all []ferry.ReplyEvent
	got chan struct{} // a token per reply
}

func newReplies() *replies { return &replies{got: make(chan struct{}, 1<<16)} }

func (r *replies) add(e ferry.ReplyEvent) {
	r.mu.Lock()
	r.all = append(r.all, e)
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *replies) list() []ferry.ReplyEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.all)
}

// waitFor waits until a reply satisfies ok.
func (r *replies) waitFor(t *testing.T, what string, ok func(ferry.ReplyEvent) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if slices.ContainsFunc(r.list(), ok) {
			return
		}
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("no reply %s within 20s; got %d replies", what, len(r.list()))
		}
	}
}

func gotTotal(e ferry.ReplyEvent) int64 {
	var v struct{ Total int64 }
	json.Unmarshal(e.Line, &v)
	return v.Total
}

// The server's replies arrive while the stream is still being written, over
// HTTP/1.1 (chunked, full duplex) and HTTP/2.
func TestStreamRepliesWhileSending(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		url, dir := streamOrigin(t, h2, counting)
		rs := newReplies()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		task, err := mustSession(t, testConfig(h2)).Stream(ctx, ferry.StreamRequest{URL: url + "/stream/a.bin", OnReply: rs.add})
		if err != nil {
			t.Fatal(err)
		}
		input := ferrytest.Bytes(1<<20, 101)
		if _, err := task.Write(input[:1000]); err != nil {
			t.Fatal(err)
		}
		// The stream stays open until this reply is in.
		rs.waitFor(t, "about the first bytes", func(e ferry.ReplyEvent) bool { return e.Type == "got" })
		for p := input[1000:]; len(p) > 0; p = p[min(len(p), 10000):] {
			if _, err := task.Write(p[:min(len(p), 10000)]); err != nil {
				t.Fatal(err)
			}
		}
		task.Close()
		res, err := task.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.SHA256 != ferrytest.SHA256Hex(input) || res.Size != int64(len(input)) || !slices.Contains(res.Verified, "server sha-256") {
			t.Errorf("result %+v; want %d bytes, sha-256 %s, verified by the server", res, len(input), ferrytest.SHA256Hex(input))
		}
		if want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]; res.Proto != want {
			t.Errorf("proto %s, want %s", res.Proto, want)
		}
		stored, err := os.ReadFile(filepath.Join(dir, "a.bin"))
		if err != nil || !bytes.Equal(stored, input) {
			t.Fatalf("stored stream: %d bytes, %v; want the input", len(stored), err)
		}
		all := rs.list()
		if last := all[len(all)-1]; last.Type != "done" {
			t.Errorf("last reply %s, want done", last.Line)
		}
		if got := gotTotal(lastOf(all, "got")); got != int64(len(input)) {
			t.Errorf("the processor saw %d bytes, want %d", got, len(input))
		}
	})
}

func lastOf(all []ferry.ReplyEvent, typ string) ferry.ReplyEvent {
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Type == typ {
			return all[i]
		}
	}
	return ferry.ReplyEvent{}
}

// A resumable stream survives three dropped connections: the stored
// stream is the input, the processor sees every byte once, and the replies
// go on, numbered without gaps or repeats.
func TestStreamSurvivesCuts(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		url, dir := streamOrigin(t, h2, counting)
		proxy := ferrytest.NewProxy(t, strings.TrimPrefix(url, "http://"))
		rs := newReplies()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		task, err := mustSession(t, testConfig(h2)).Stream(ctx, ferry.StreamRequest{
			URL: proxy.URL + "/stream/rec.bin", Resumable: true, OnReply: rs.add,
		})
		if err != nil {
			t.Fatal(err)
		}
		input := ferrytest.Bytes(3<<20, 102)
		quarter := len(input) / 4
		for i := range 4 {
			part := input[i*quarter : (i+1)*quarter]
			for p := part; len(p) > 0; p = p[min(len(p), 16<<10):] {
				if _, err := task.Write(p[:min(len(p), 16<<10)]); err != nil {
					t.Fatal(err)
				}
			}
			if i == 3 {
				break
			}
			// Cut once the processor has seen this quarter: the cut
			// lands mid-stream, with the connection busy.
			end := int64((i + 1) * quarter)
			rs.waitFor(t, "for the quarter", func(e ferry.ReplyEvent) bool { return e.Type == "got" && gotTotal(e) >= end })
			if n := proxy.Cut(); n == 0 {
				t.Fatalf("cut %d: no connection open", i+1)
			}
		}
		task.Close()
		res, err := task.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.SHA256 != ferrytest.SHA256Hex(input) || !slices.Contains(res.Verified, "server sha-256") {
			t.Errorf("result %+v; want sha-256 %s verified by the server", res, ferrytest.SHA256Hex(input))
		}
		stored, err := os.ReadFile(filepath.Join(dir, "rec.bin"))
		if err != nil || !bytes.Equal(stored, input) {
			t.Fatalf("stored stream: %d bytes, %v; want the input", len(stored), err)
		}
		all := rs.list()
		for i, e := range all {
			if e.Seq != int64(i+1) {
				t.Fatalf("reply %d has seq %d: replies must be numbered 1, 2, ... without gaps or repeats", i, e.Seq)
			}
		}
		if all[len(all)-1].Type != "done" {
			t.Errorf("last reply %s, want done", all[len(all)-1].Line)
		}
		var prev int64
		for _, e := range all {
			if e.Type == "got" {
				if g := gotTotal(e); g <= prev {
					t.Fatalf("the processor's count went from %d to %d: bytes seen twice", prev, g)
				} else {
					prev = g
				}
			}
		}
		if prev != int64(len(input)) {
			t.Errorf("the processor saw %d bytes, want %d", prev, len(input))
		}
		if _, cut := proxy.Conns(); cut < 3 {
			t.Errorf("%d connections cut, want 3", cut)
		}
	})
}

// A plain stream cut mid-way fails with ErrStreamLost; nothing is left
// under the stream's name.
func TestStreamPlainCutFails(t *testing.T) {
	url, dir := streamOrigin(t, false, counting)
	proxy := ferrytest.NewProxy(t, strings.TrimPrefix(url, "http://"))
	rs := newReplies()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	task, err := mustSession(t, testConfig(false)).Stream(ctx, ferry.StreamRequest{URL: proxy.URL + "/stream/p.bin", OnReply: rs.add})
	if err != nil {
		t.Fatal(err)
	}
	task.Write(ferrytest.Bytes(4096, 103))
	rs.waitFor(t, "about the first bytes", func(e ferry.ReplyEvent) bool { return e.Type == "got" })
	proxy.Cut()
	_, err = task.Wait(ctx)
	if !errors.Is(err, ferry.ErrStreamLost) {
		t.Fatalf("err = %v, want the stream lost", err)
	}
	if _, err := task.Write([]byte("more")); err == nil {
		t.Error("a write after the stream was lost succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "p.bin")); err == nil {
		t.Error("a cut stream was stored under its name")
	}
}

// When the server stops reading, a plain stream's writer blocks once the
// buffer is full, and a resumable stream spills to disk: memory stays
// bounded either way.
func TestStreamMemoryBound(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer ts.Close()
	defer close(release)
	const buffer = 1 << 20
	for _, resumable := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		task, err := mustSession(t, testConfig(false)).Stream(ctx, ferry.StreamRequest{URL: ts.URL + "/s", Buffer: buffer, Resumable: resumable})
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		var written atomic.Int64
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			chunk := make([]byte, 64<<10)
			for range 1024 { // 64 MiB
				if _, err := task.Write(chunk); err != nil {
					return
				}
				written.Add(int64(len(chunk)))
			}
		}()
		// Wait until the writer finishes or stops making progress.
		last, still := int64(-1), 0
		for i := 0; i < 200 && still < 5; i++ {
			select {
			case <-wrote:
				still = 5
				continue
			case <-time.After(50 * time.Millisecond):
			}
			if n := written.Load(); n == last {
				still++
			} else {
				last, still = n, 0
			}
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		grown := int64(after.HeapInuse) - int64(before.HeapInuse)
		n := written.Load()
		if resumable && n != 64<<20 {
			t.Errorf("resumable: %d bytes written, want all 64 MiB (spilled to disk)", n)
		}
		// Blocked at the buffer plus what the sockets hold.
		if !resumable && n > 32<<20 {
			t.Errorf("plain: %d bytes accepted while the server reads nothing", n)
		}
		if grown > 16<<20 {
			t.Errorf("resumable=%v: heap grew by %d bytes for a %d-byte buffer", resumable, grown, buffer)
		}
		t.Logf("resumable=%v: %d MiB written, heap grew %d KiB", resumable, n>>20, grown>>10)
		task.Cancel()
		cancel()
		<-wrote
	}
}

// A connection that goes silent (no reset, nothing more arrives) is noticed
// by the idle timeout, and a resumable stream goes on over a new one.
func TestStreamSilentDrop(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		url, dir := streamOrigin(t, h2, counting)
		proxy := ferrytest.NewProxy(t, strings.TrimPrefix(url, "http://"))
		cfg := testConfig(h2)
		cfg.IdleTimeout = time.Second
		rs := newReplies()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		task, err := mustSession(t, cfg).Stream(ctx, ferry.StreamRequest{
			URL: proxy.URL + "/stream/silent.bin", Resumable: true, OnReply: rs.add,
		})
		if err != nil {
			t.Fatal(err)
		}
		events := task.Events()
		input := ferrytest.Bytes(4<<20, 104)
		first := int64(256 << 10)
		task.Write(input[:first])
		rs.waitFor(t, "for the first part", func(e ferry.ReplyEvent) bool { return e.Type == "got" && gotTotal(e) >= first })
		if n := proxy.Stall(); n == 0 {
			t.Fatal("no connection to stall")
		}
		for p := input[first:]; len(p) > 0; p = p[min(len(p), 64<<10):] {
			if _, err := task.Write(p[:min(len(p), 64<<10)]); err != nil {
				t.Fatal(err)
			}
		}
		task.Close()
		if _, err := task.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		stored, err := os.ReadFile(filepath.Join(dir, "silent.bin"))
		if err != nil || !bytes.Equal(stored, input) {
			t.Fatalf("stored stream: %d bytes, %v; want the input", len(stored), err)
		}
		// Over HTTP/1.1 the request's watchdog notices; over HTTP/2 the
		// connection's unanswered ping may close it first.
		var noticed bool
		for e := range events {
			if r, ok := e.(ferry.RetryEvent); ok && (errors.Is(r.Err, ferry.ErrIdleTimeout) || h2) {
				noticed = true
			}
		}
		if !noticed {
			t.Error("no retry after the stall")
		}
		if accepted, _ := proxy.Conns(); accepted < 2 {
			t.Errorf("%d connections: the stream never moved to a new one", accepted)
		}
	})
}

// A producer that pauses for longer than the idle timeout is no stall: the
// stream waits for it on the same request.
func TestStreamProducerPause(t *testing.T) {
	for _, resumable := range []bool{false, true} {
		url, dir := streamOrigin(t, false, counting)
		cfg := testConfig(false)
		cfg.IdleTimeout = 300 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		task, err := mustSession(t, cfg).Stream(ctx, ferry.StreamRequest{URL: url + "/stream/pause.bin", Resumable: resumable})
		if err != nil {
			t.Fatal(err)
		}
		task.Write([]byte("before the pause,"))
		time.Sleep(4 * cfg.IdleTimeout)
		task.Write([]byte(" and after"))
		task.Close()
		if _, err := task.Wait(ctx); err != nil {
			t.Fatalf("resumable=%v: %v", resumable, err)
		}
		if m := task.Metrics(); m.Retries != 0 {
			t.Errorf("resumable=%v: %d retries: the pause was taken for a stall", resumable, m.Retries)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "pause.bin")); string(b) != "before the pause, and after" {
			t.Errorf("resumable=%v: stored %q", resumable, b)
		}
	}
}

// A stream records its requests' metrics and keeps to the session's
// bandwidth budget.
func TestStreamMetricsAndRateLimit(t *testing.T) {
	url, _ := streamOrigin(t, false, counting)
	cfg := testConfig(false)
	cfg.RateLimit = 256 << 10 // a burst of 256 KiB, then 256 KiB/s
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	task, err := mustSession(t, cfg).Stream(ctx, ferry.StreamRequest{URL: url + "/stream/m.bin", Resumable: true})
	if err != nil {
		t.Fatal(err)
	}
	task.Write(ferrytest.Bytes(768<<10, 105))
	task.Close()
	if _, err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: the budget cannot be beaten, whatever the machine.
	if d := time.Since(start); d < 1800*time.Millisecond {
		t.Errorf("768 KiB at 256 KiB/s took %v: the budget was not applied", d)
	}
	m := task.Metrics()
	if len(m.Transactions) == 0 {
		t.Fatal("no transaction recorded")
	}
	tx := m.Transactions[0]
	if tx.Method != http.MethodPost || tx.RequestBodyBytes != 768<<10 || tx.ResponseBodyBytes == 0 || tx.StatusCode/100 != 2 ||
		tx.FirstByte.IsZero() || tx.End.Before(tx.FirstByte) {
		t.Errorf("transaction %+v: want the POST with its body sent, its replies received, and its times", tx)
	}
}

// A plain stream whose connection goes silent fails once the idle timeout
// passes, saying so, instead of hanging until TCP gives up.
func TestStreamPlainSilentDropFails(t *testing.T) {
	url, _ := streamOrigin(t, false, counting)
	proxy := ferrytest.NewProxy(t, strings.TrimPrefix(url, "http://"))
	cfg := testConfig(false)
	cfg.IdleTimeout = 500 * time.Millisecond
	rs := newReplies()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	task, err := mustSession(t, cfg).Stream(ctx, ferry.StreamRequest{URL: proxy.URL + "/stream/p.bin", OnReply: rs.add})
	if err != nil {
		t.Fatal(err)
	}
	task.Write(ferrytest.Bytes(4096, 106))
	rs.waitFor(t, "about the first bytes", func(e ferry.ReplyEvent) bool { return e.Type == "got" })
	proxy.Stall()
	go func() { // keeps writing until the stream fails
		for i := 0; i < 4096 && ctx.Err() == nil; i++ {
			if _, err := task.Write(make([]byte, 16<<10)); err != nil {
				return
			}
		}
	}()
	_, err = task.Wait(ctx)
	if !errors.Is(err, ferry.ErrStreamLost) || !errors.Is(err, ferry.ErrIdleTimeout) {
		t.Fatalf("err = %v, want the stream lost to the idle timeout", err)
	}
}
