package stream

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// held returns the bytes of the replies l keeps.
func (l *live) heldBytes() (n int) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	for _, r := range l.replies {
		n += len(r.line)
	}
	return n
}

// TestRepliesBoundedInBytes emits replies nobody collects, as a client
// that never reads its response makes a processor do: what is kept stays
// under a bound in bytes, whatever the replies' size, and is the newest.
func TestRepliesBoundedInBytes(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "part"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := newLive("id", "name", f.Name(), f, true)
	big := map[string]string{"pad": strings.Repeat("x", 1000)}
	const n = 20000 // 20 MB of replies
	for range n {
		l.emit(big)
	}
	if got := l.heldBytes(); got > 2*maxReplyBytes || got != l.logBytes {
		t.Errorf("%d bytes of replies kept (counted %d), want at most %d", got, l.logBytes, 2*maxReplyBytes)
	}
	if last := l.replies[len(l.replies)-1].seq; last != n {
		t.Errorf("newest reply kept is %d, want %d", last, n)
	}
}

// Config's limits follow one rule: 0 is the default, negative is off; a
// resumable stream that cannot expire sets no timer.
func TestConfigRule(t *testing.T) {
	h, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if h.maxSize != 0 || h.expiry != DefaultExpiry || h.ackEvery != DefaultAckEvery || h.maxStreams != DefaultMaxStreams || h.perClient != DefaultMaxStreamsPerClient {
		t.Errorf("defaults: %d %v %v %d %d", h.maxSize, h.expiry, h.ackEvery, h.maxStreams, h.perClient)
	}
	h, err = New(Config{Dir: t.TempDir(), MaxSize: -1, Expiry: -1, AckEvery: -1, MaxStreams: -1, MaxStreamsPerClient: -1})
	if err != nil {
		t.Fatal(err)
	}
	if h.maxSize != 0 || h.expiry != 0 || h.ackEvery != 0 || h.maxStreams != 0 || h.perClient != 0 {
		t.Errorf("off: %d %v %v %d %d", h.maxSize, h.expiry, h.ackEvery, h.maxStreams, h.perClient)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "part"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := newLive("id", "name", f.Name(), f, true)
	l.acquire(nil)
	h.release(l)
	if l.expire != nil {
		t.Error("a stream that never expires has an expiry timer")
	}
}

// startLive starts a resumable stream called name on h, as a creation
// would, and holds it.
func startLive(t *testing.T, h *Handler, name string) *live {
	t.Helper()
	l, err := h.start(name, true, nil, httptest.NewRequest(http.MethodPost, "/stream/"+name, nil))
	if err != nil {
		t.Fatal(err)
	}
	l.acquire(nil)
	t.Cleanup(func() { h.drop(l, errShutdown) })
	return l
}

// The server's own failures (a write, a rename) are replied as what
// failed, never with the paths of the server's files: those go to the log.
func TestServerFailuresNotShown(t *testing.T) {
	dir := t.TempDir()
	h, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	l := startLive(t, h, "w")
	ro, err := os.Open(l.part) // writes to it fail
	if err != nil {
		t.Fatal(err)
	}
	l.f.Close()
	l.f = ro
	err = h.receive(httptest.NewRequest(http.MethodPatch, "/stream/w", strings.NewReader("bytes")), l)
	if err == nil || strings.Contains(err.Error(), dir) {
		t.Errorf("a failed write is replied as %v, want an error without the server's paths", err)
	}

	l = startLive(t, h, "r")
	if err := os.Mkdir(filepath.Join(dir, "r"), 0o755); err != nil { // the final name cannot be taken
		t.Fatal(err)
	}
	if err := h.finish(l); err == nil || strings.Contains(err.Error(), dir) {
		t.Errorf("a failed finish is replied as %v, want an error without the server's paths", err)
	}
	// ... and the stream is dropped, not left holding its place.
	if _, err := os.Stat(l.part); !os.IsNotExist(err) || len(h.byID) != 1 || h.names["r"] != nil {
		t.Errorf("after a failed finish: part file %v, %d streams in progress, name held %v", err, len(h.byID), h.names["r"] != nil)
	}
}

// A write cut short (a full disk) leaves bytes in the file past what the
// stream counts; a resumable stream goes on from its offset, and what is
// stored is exactly the bytes its digest is of, never the leftovers.
func TestWriteCutShort(t *testing.T) {
	dir := t.TempDir()
	h, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	l := startLive(t, h, "c")
	if err := l.write([]byte("good ")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.f.WriteAt([]byte("leftover of a failed write"), l.offset.Load()); err != nil { // what a cut write leaves
		t.Fatal(err)
	}
	if err := l.write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if err := h.finish(l); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "c")); err != nil || string(got) != "good more" {
		t.Errorf("stored %q, %v; want %q", got, err, "good more")
	}
}

// A stream never replaces a file it did not create: one that appeared
// under its name while it was in progress stays, and the stream gets an
// error instead.
func TestFinishReplacesNothing(t *testing.T) {
	dir := t.TempDir()
	h, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	l := startLive(t, h, "n")
	if err := l.write([]byte("the stream")); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, "n")
	if err := os.WriteFile(theirs, []byte("not ferry's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.finish(l); err == nil {
		t.Error("a stream finished over a file that appeared under its name")
	}
	if got, _ := os.ReadFile(theirs); string(got) != "not ferry's" {
		t.Errorf("the file under the stream's name holds %q, want it untouched", got)
	}
	if _, err := os.Stat(l.part); !os.IsNotExist(err) {
		t.Errorf("the part file of a stream that could not finish: %v, want it removed", err)
	}
}
