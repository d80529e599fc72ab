package filestore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/filestore"
	"github.com/ferryhq/ferry/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := filestore.New(filestore.Config{Dir: t.TempDir(), CheckpointBytes: 256 << 10})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func newStore(t *testing.T, dir string, checkpoint int64) *filestore.FileStore {
	t.Helper()
	s, err := filestore.New(filestore.Config{Dir: dir, CheckpointBytes: checkpoint})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recordedOffset reads the offset in the info file, as a restarted process
// would find it.
func recordedOffset(t *testing.T, dir, id string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, id+".info"))
	if err != nil {
		t.Fatal(err)
	}
	var info store.Info
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return info.Offset
}

// A crash leaves bytes past the recorded offset; the next process cuts
// them off before anything else uses the upload.
func TestReconcileCutsUnrecordedBytes(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, 0)
	id := store.NewID()
	u, err := s.NewUpload(t.Context(), store.Info{ID: id, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteChunk(t.Context(), 0, bytes.NewReader([]byte("0123456789"))); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(s.DataPath(id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("unrecorded garbage"))
	f.Close()
	// A stray temporary info file from a crashed rename.
	tmp := filepath.Join(dir, "."+id+".info.tmp123")
	os.WriteFile(tmp, []byte("{"), 0o644)

	s2 := newStore(t, dir, 0)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary info file survived New: %v", err)
	}
	u2, err := s2.GetUpload(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(s.DataPath(id)); fi.Size() != 10 {
		t.Errorf("data file has %d bytes after reconcile, want 10", fi.Size())
	}
	if n, err := u2.WriteChunk(t.Context(), 10, bytes.NewReader([]byte("abc"))); err != nil || n != 3 {
		t.Fatalf("WriteChunk after reconcile = %d, %v", n, err)
	}
	r, _ := u2.GetReader(t.Context())
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "0123456789abc" {
		t.Errorf("stored %q", got)
	}
}

// Fewer bytes than the recorded offset means storage lost data: the upload
// must not continue.
func TestReconcileLostData(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, 0)
	id := store.NewID()
	u, _ := s.NewUpload(t.Context(), store.Info{ID: id, Size: 100})
	u.WriteChunk(t.Context(), 0, bytes.NewReader([]byte("0123456789")))
	os.Truncate(s.DataPath(id), 4)
	s2 := newStore(t, dir, 0)
	if _, err := s2.GetUpload(t.Context(), id); !errors.Is(err, store.ErrLost) {
		t.Errorf("GetUpload of a truncated upload = %v, want ErrLost", err)
	}
}

// trickle yields data, then blocks until release is closed and fails.
type trickle struct {
	data    []byte
	served  chan struct{}
	release chan struct{}
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	close(r.served)
	<-r.release
	return 0, io.ErrUnexpectedEOF
}

// A long chunk is made durable every CheckpointBytes: while it is still
// being written, the offset on disk already covers the checkpoints, and
// when the source fails everything received is kept.
func TestCheckpoints(t *testing.T) {
	dir := t.TempDir()
	const ckpt = 1 << 20
	s := newStore(t, dir, ckpt)
	id := store.NewID()
	u, _ := s.NewUpload(t.Context(), store.Info{ID: id, SizeIsDeferred: true})
	want := bytes.Repeat([]byte("0123456789abcdef"), (3*ckpt+ckpt/2)/16)
	src := &trickle{data: want, served: make(chan struct{}), release: make(chan struct{})}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := u.WriteChunk(context.Background(), 0, src)
		done <- result{n, err}
	}()
	select {
	case <-src.served:
	case <-time.After(10 * time.Second):
		t.Fatal("WriteChunk did not read its source")
	}
	if got := recordedOffset(t, dir, id); got != 3*ckpt {
		t.Errorf("recorded offset mid-chunk = %d, want %d (three checkpoints)", got, 3*ckpt)
	}
	close(src.release)
	r := <-done
	if !errors.Is(r.err, io.ErrUnexpectedEOF) || r.n != int64(len(want)) {
		t.Errorf("WriteChunk = %d, %v; want %d, io.ErrUnexpectedEOF", r.n, r.err, len(want))
	}
	if got := recordedOffset(t, dir, id); got != int64(len(want)) {
		t.Errorf("recorded offset after the source failed = %d, want %d", got, len(want))
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := filestore.New(filestore.Config{}); err == nil {
		t.Error("New without Dir succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := filestore.New(filestore.Config{Dir: f}); err == nil {
		t.Error("New on a regular file succeeded")
	}
	s := newStore(t, t.TempDir(), 0)
	if _, err := s.NewUpload(t.Context(), store.Info{ID: "../escape"}); err == nil {
		t.Error("NewUpload with a path as ID succeeded")
	}
}

// Metadata of any bytes survives the info file, which older versions wrote
// as a JSON object of strings; such files still read.
func TestMetadataRecord(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, 0)
	meta := map[string]string{"bin": "\xff\x00\xfe", "filename": "a.txt", "empty": ""}
	u, err := s.NewUpload(t.Context(), store.Info{ID: store.NewID(), Size: 1, MetaData: meta})
	if err != nil {
		t.Fatal(err)
	}
	info, err := u.GetInfo(t.Context())
	if err != nil || !maps.Equal(info.MetaData, meta) {
		t.Errorf("metadata read back as %q (%v), want %q", info.MetaData, err, meta)
	}

	old := store.Info{ID: store.NewID(), Size: 1, MetaData: map[string]string{"filename": "old.txt"}}
	b, _ := json.Marshal(old)
	os.WriteFile(filepath.Join(dir, old.ID+".info"), b, 0o644)
	os.WriteFile(s.DataPath(old.ID), nil, 0o644)
	u, err = newStore(t, dir, 0).GetUpload(t.Context(), old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := u.GetInfo(t.Context()); err != nil || !maps.Equal(info.MetaData, old.MetaData) {
		t.Errorf("metadata of an older info file read as %q (%v), want %q", info.MetaData, err, old.MetaData)
	}
}

// A restarted store measures what it held before the crash: the recorded
// offsets, not bytes a crash left past them.
func TestUsageAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir, 0)
	u, err := s.NewUpload(t.Context(), store.Info{ID: store.NewID(), Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.WriteChunk(t.Context(), 0, bytes.NewReader(make([]byte, 40))); err != nil {
		t.Fatal(err)
	}
	n, before, err := store.MeasureUsage(t.Context(), s)
	if err != nil || n != 1 {
		t.Fatalf("MeasureUsage = %d, %d, %v", n, before, err)
	}
	info, _ := u.GetInfo(t.Context())
	f, _ := os.OpenFile(s.DataPath(info.ID), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(make([]byte, 30)) // received, never recorded
	f.Close()
	if n, after, err := store.MeasureUsage(t.Context(), newStore(t, dir, 0)); err != nil || n != 1 || after != before {
		t.Errorf("after a restart: MeasureUsage = %d, %d, %v; want 1, %d", n, after, err, before)
	}
}
