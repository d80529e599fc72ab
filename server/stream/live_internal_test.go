package stream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/filestore"
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
	l := newLive("id", "name", true)
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
	l := newLive("id", "name", true)
	l.enter()
	l.release(func() { t.Error("expired") }, h.expiry)
	if l.expire != nil {
		t.Error("a stream that never expires has an expiry timer")
	}
}

// startLive starts a resumable stream called name on h, as a creation
// would, and holds it; proc, if not nil, processes it.
func startLive(t *testing.T, h *Handler, name string, proc Processor) (*live, *resumable.Hold) {
	t.Helper()
	l, hold, err := h.start(name, true, proc, httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/stream/"+name, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.drop(l, errShutdown, hold)
		hold.Release()
	})
	return l, hold
}

// send has h receive body into l, as a request's content.
func send(h *Handler, l *live, hold *resumable.Hold, body string) error {
	return h.receive(httptest.NewRequest(http.MethodPatch, "/stream/"+l.name, strings.NewReader(body)), l, hold)
}

// stored reports whether l's upload is still in h's store.
func stored(h *Handler, l *live) bool {
	_, err := h.parts().GetUpload(context.Background(), l.id)
	return !errors.Is(err, store.ErrNotFound)
}

// faultStore is a store of streams in progress whose writes, while err is
// set, read what they are given, keep the first keep bytes of it and fail
// with err, as a full disk makes them.
type faultStore struct {
	partStore
	keep int64
	err  error
}

// newFaultStore makes h's store of streams in progress a faultStore.
func newFaultStore(t *testing.T, h *Handler) *faultStore {
	t.Helper()
	st, err := filestore.New(filestore.Config{Dir: filepath.Join(h.cfg.Dir, partDir)})
	if err != nil {
		t.Fatal(err)
	}
	fs := &faultStore{partStore: st}
	h.store = fs
	return fs
}

type faultUpload struct {
	store.Upload
	s *faultStore
}

func (s *faultStore) NewUpload(ctx context.Context, info store.Info) (store.Upload, error) {
	up, err := s.partStore.NewUpload(ctx, info)
	return faultUpload{up, s}, err
}

func (s *faultStore) GetUpload(ctx context.Context, id string) (store.Upload, error) {
	up, err := s.partStore.GetUpload(ctx, id)
	return faultUpload{up, s}, err
}

func (s *faultStore) Terminate(ctx context.Context, up store.Upload) error {
	return s.partStore.Terminate(ctx, up.(faultUpload).Upload)
}

func (s *faultStore) DeclareLength(ctx context.Context, up store.Upload, n int64) error {
	return s.partStore.DeclareLength(ctx, up.(faultUpload).Upload, n)
}

func (u faultUpload) WriteChunk(ctx context.Context, off int64, src io.Reader) (int64, error) {
	if u.s.err == nil {
		return u.Upload.WriteChunk(ctx, off, src)
	}
	all, _ := io.ReadAll(src)
	n, err := u.Upload.WriteChunk(ctx, off, bytes.NewReader(all[:min(u.s.keep, int64(len(all)))]))
	return n, errors.Join(err, u.s.err)
}

// The server's own failures (a write, a link) are replied as what
// failed, never with the paths of the server's files: those go to the log.
func TestServerFailuresNotShown(t *testing.T) {
	dir := t.TempDir()
	h, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	fs := newFaultStore(t, h)
	l, hold := startLive(t, h, "w", nil)
	fs.err = fmt.Errorf("write %s: input/output error", filepath.Join(dir, partDir, l.id+".bin"))
	if err := send(h, l, hold, "bytes"); err == nil || strings.Contains(err.Error(), dir) {
		t.Errorf("a failed write is replied as %v, want an error without the server's paths", err)
	}
	fs.err = nil

	l, hold = startLive(t, h, "r", nil)
	if err := os.Mkdir(filepath.Join(dir, "r"), 0o755); err != nil { // the final name cannot be taken
		t.Fatal(err)
	}
	if err := h.finish(l, hold); err == nil || strings.Contains(err.Error(), dir) {
		t.Errorf("a failed finish is replied as %v, want an error without the server's paths", err)
	}
	// ... and the stream is dropped, not left holding its place.
	if stored(h, l) || len(h.byID) != 1 || h.names["r"] != nil {
		t.Errorf("after a failed finish: upload kept %v, %d streams in progress, name held %v", stored(h, l), len(h.byID), h.names["r"] != nil)
	}
}

// cutShort has l receive "good ", then "more of it" of which the store
// keeps two bytes and fails, as a full disk makes it: l is at offset 7,
// its processor and sum fed 15 bytes.
func cutShort(t *testing.T, h *Handler, fs *faultStore, l *live, hold *resumable.Hold) {
	t.Helper()
	if err := send(h, l, hold, "good "); err != nil {
		t.Fatal(err)
	}
	fs.keep, fs.err = 2, errors.New("no space left on device")
	if err := send(h, l, hold, "more of it"); !errors.Is(err, errStore) {
		t.Fatalf("a write the store kept two bytes of: %v, want %v", err, errStore)
	}
	if got := l.offset.Load(); got != 7 {
		t.Fatalf("offset %d after the store kept 2 of 10 bytes, want 7", got)
	}
	fs.err = nil
}

// A store that keeps less of a write than it read (a full disk, a cut
// connection) leaves the processor and the sum ahead of the offset: the
// client resends from the offset, and what the processor sees, what is
// stored and what the digest is of are the stream's bytes, once.
func TestWriteCutShort(t *testing.T) {
	dir := t.TempDir()
	h, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan []byte, 1)
	proc := ProcessorFunc(func(ctx context.Context, r io.Reader, emit func(any)) error {
		b, err := io.ReadAll(r)
		seen <- b
		return err
	})
	fs := newFaultStore(t, h)
	l, hold := startLive(t, h, "c", proc)
	cutShort(t, h, fs, l, hold)
	if err := send(h, l, hold, "re of it"); err != nil { // from the offset, as the client resends
		t.Fatal(err)
	}
	if err := h.finish(l, hold); err != nil {
		t.Fatal(err)
	}
	const want = "good more of it"
	if got, err := os.ReadFile(filepath.Join(dir, "c")); err != nil || string(got) != want {
		t.Errorf("stored %q, %v; want %q", got, err, want)
	}
	if got := <-seen; string(got) != want {
		t.Errorf("the processor saw %q, want %q", got, want)
	}
	if got := hex.EncodeToString(l.sum.Sum(nil)); got != fmt.Sprintf("%x", sha256.Sum256([]byte(want))) {
		t.Errorf("sum %s is not of %q", got, want)
	}
	if stored(h, l) {
		t.Error("a finished stream's upload is still in the store")
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
	l, hold := startLive(t, h, "n", nil)
	if err := send(h, l, hold, "the stream"); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, "n")
	if err := os.WriteFile(theirs, []byte("not ferry's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.finish(l, hold); err == nil {
		t.Error("a stream finished over a file that appeared under its name")
	}
	if got, _ := os.ReadFile(theirs); string(got) != "not ferry's" {
		t.Errorf("the file under the stream's name holds %q, want it untouched", got)
	}
	if stored(h, l) {
		t.Error("the upload of a stream that could not finish is still in the store")
	}
}

// A client that resends other bytes than the ones the store did not keep
// gets the sum of what is stored, not of what was fed.
func TestResendDiffers(t *testing.T) {
	dir := t.TempDir()
	h, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	fs := newFaultStore(t, h)
	l, hold := startLive(t, h, "d", nil)
	cutShort(t, h, fs, l, hold)
	if err := send(h, l, hold, "XXXXXXXX"); err != nil {
		t.Fatal(err)
	}
	if err := h.finish(l, hold); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "d"))
	if err != nil || string(got) != "good moXXXXXXXX" {
		t.Fatalf("stored %q, %v", got, err)
	}
	if sum := hex.EncodeToString(l.sum.Sum(nil)); sum != fmt.Sprintf("%x", sha256.Sum256(got)) {
		t.Errorf("sum %s is not of the stored %q", sum, got)
	}
}

// blockingBody gives its bytes in one read, then waits for release before
// it fails as a cut connection does.
type blockingBody struct {
	data             []byte
	reading, release chan struct{}
}

func (b *blockingBody) Read(p []byte) (int, error) {
	if len(b.data) > 0 {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	close(b.reading)
	<-b.release
	return 0, errors.New("connection cut")
}

// A stream dropped while a request is still reading it (Close, or an
// expiry as the request came) gives back all it holds of the storage,
// what that request read included, and leaves nothing in the store.
func TestDropMidPieceGivesStorageBack(t *testing.T) {
	for _, canResume := range []bool{false, true} {
		meter := store.NewMeter(store.MeterConfig{Max: 1 << 30})
		h, err := New(Config{Dir: t.TempDir(), Storage: meter, AckEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		abandoned := make(chan struct{})
		proc := ProcessorFunc(func(ctx context.Context, r io.Reader, emit func(any)) error {
			go io.Copy(io.Discard, r)
			<-ctx.Done() // the drop has begun
			close(abandoned)
			return nil
		})
		l, hold, err := h.start("m", canResume, proc, httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/stream/m", nil))
		if err != nil {
			t.Fatal(err)
		}
		body := &blockingBody{data: make([]byte, 100), reading: make(chan struct{}), release: make(chan struct{})}
		done := make(chan error)
		go func() {
			defer hold.Release() // as the request does once its content ends
			done <- h.receive(httptest.NewRequest(http.MethodPatch, "/stream/m", body), l, hold)
		}()
		<-body.reading // the 100 bytes are taken and being written
		if got := meter.Used(); got != store.RecordBytes+100 {
			t.Fatalf("the storage counts %d while the stream is read, want %d", got, store.RecordBytes+100)
		}
		dropped := make(chan struct{})
		go func() {
			h.drop(l, errShutdown, nil)
			close(dropped)
		}()
		<-abandoned
		close(body.release) // the takeover's deadline, which a recorder cannot set
		if err := <-done; !errors.Is(err, errCanceled) {
			t.Errorf("resumable %v: the request reading a dropped stream ended with %v, want %v", canResume, err, errCanceled)
		}
		<-dropped
		if got := meter.Used(); got != 0 {
			t.Errorf("resumable %v: the storage counts %d after the stream was dropped, want 0", canResume, got)
		}
		if stored(h, l) {
			t.Errorf("resumable %v: the dropped stream's upload is still in the store", canResume)
		}
	}
}
