package ferry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
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
		input := randomBytes(1 << 20)
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
		if res.SHA256 != sha(input) || res.Size != int64(len(input)) || !slices.Contains(res.Verified, "server sha-256") {
			t.Errorf("result %+v; want %d bytes, sha-256 %s, verified by the server", res, len(input), sha(input))
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
		input := randomBytes(3 << 20)
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
		if res.SHA256 != sha(input) || !slices.Contains(res.Verified, "server sha-256") {
			t.Errorf("result %+v; want sha-256 %s verified by the server", res, sha(input))
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
	task.Write(randomBytes(4096))
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
