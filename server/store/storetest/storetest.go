// Package storetest is the conformance suite every [store.Store] passes:
// the core contract first, then each optional capability the store has.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/server/store"
)

// Run runs the suite; newStore returns an empty store for one subtest.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s store.Store)
	}{
		{"NewUploadInfo", testNewUploadInfo},
		{"NotFound", testNotFound},
		{"WriteChunks", testWriteChunks},
		{"OffsetMismatch", testOffsetMismatch},
		{"SizeExceeded", testSizeExceeded},
		{"SourceFails", testSourceFails},
		{"ContextCancelled", testContextCancelled},
		{"FinishUpload", testFinishUpload},
		{"ReaderSeeks", testReaderSeeks},
		{"Parallel", testParallel},
		{"Terminater", testTerminater},
		{"LengthDeclarer", testLengthDeclarer},
		{"Concater", testConcater},
		{"Lister", testLister},
		{"Usage", testUsage},
		{"AtomicWriter", testAtomicWriter},
		{"Locker", testLocker},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newStore(t)) })
	}
}

// data returns n reproducible bytes.
func data(n int, seed uint64) []byte {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func mustNew(t *testing.T, s store.Store, info store.Info) store.Upload {
	t.Helper()
	if info.ID == "" {
		info.ID = store.NewID()
	}
	u, err := s.NewUpload(t.Context(), info)
	if err != nil {
		t.Fatalf("NewUpload(%+v) = %v", info, err)
	}
	return u
}

func mustInfo(t *testing.T, u store.Upload) store.Info {
	t.Helper()
	info, err := u.GetInfo(t.Context())
	if err != nil {
		t.Fatalf("GetInfo = %v", err)
	}
	return info
}

func mustWrite(t *testing.T, u store.Upload, offset int64, p []byte) {
	t.Helper()
	n, err := u.WriteChunk(t.Context(), offset, bytes.NewReader(p))
	if err != nil || n != int64(len(p)) {
		t.Fatalf("WriteChunk(%d, %d bytes) = %d, %v; want %d, nil", offset, len(p), n, err, len(p))
	}
}

// contents returns the stored bytes of u.
func contents(t *testing.T, u store.Upload) []byte {
	t.Helper()
	r, err := u.GetReader(t.Context())
	if err != nil {
		t.Fatalf("GetReader = %v", err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading upload: %v", err)
	}
	return b
}

func checkContents(t *testing.T, u store.Upload, want []byte) {
	t.Helper()
	got := contents(t, u)
	if !bytes.Equal(got, want) {
		t.Fatalf("stored %d bytes, want %d (equal prefix: %v)", len(got), len(want), bytes.HasPrefix(want, got))
	}
	if info := mustInfo(t, u); info.Offset != int64(len(want)) {
		t.Fatalf("Offset = %d, want %d", info.Offset, len(want))
	}
}

func testNewUploadInfo(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	in := store.Info{
		ID:             store.NewID(),
		Size:           1234,
		MetaData:       map[string]string{"filename": "a.txt", "empty": "", "bytes": "\x00\xff\xfe\u202e\"\\<"},
		Name:           "a.txt",
		ContentType:    "text/plain",
		IsPartial:      true,
		PartialUploads: nil,
		ReprDigest:     "sha-256=:AAAA:",
		Offset:         99, // ignored
	}
	u := mustNew(t, s, in)
	got := mustInfo(t, u)
	if got.ID != in.ID || got.Size != 1234 || got.SizeIsDeferred || got.Offset != 0 ||
		got.Name != "a.txt" || got.ContentType != "text/plain" || !got.IsPartial || got.IsFinal ||
		got.ReprDigest != in.ReprDigest || !maps.Equal(got.MetaData, in.MetaData) {
		t.Errorf("GetInfo = %+v, want the fields of %+v with Offset 0", got, in)
	}
	if got.CreatedAt.Before(before) || got.UpdatedAt.Before(before) {
		t.Errorf("CreatedAt, UpdatedAt = %v, %v; want now", got.CreatedAt, got.UpdatedAt)
	}
	if got.Finished() {
		t.Error("new upload of 1234 bytes is Finished")
	}
	u2, err := s.GetUpload(t.Context(), in.ID)
	if err != nil {
		t.Fatalf("GetUpload(%s) = %v", in.ID, err)
	}
	if got2 := mustInfo(t, u2); got2.ID != in.ID || got2.Size != 1234 {
		t.Errorf("GetUpload(...).GetInfo = %+v", got2)
	}

	final := mustNew(t, s, store.Info{IsFinal: true, PartialUploads: []string{"a", "b"}, SizeIsDeferred: true})
	if fi := mustInfo(t, final); !fi.IsFinal || !slices.Equal(fi.PartialUploads, []string{"a", "b"}) || !fi.SizeIsDeferred {
		t.Errorf("final upload info = %+v", fi)
	}
	if _, err := s.NewUpload(t.Context(), store.Info{ID: in.ID}); err == nil {
		t.Errorf("NewUpload with an existing ID succeeded")
	}
	empty := mustNew(t, s, store.Info{Size: 0})
	if !mustInfo(t, empty).Finished() {
		t.Error("upload of size 0 is not Finished")
	}
}

func testNotFound(t *testing.T, s store.Store) {
	for _, id := range []string{store.NewID(), "", "../etc/passwd", "..", "a/b", "0123456789abcdef0123456789ABCDEF"} {
		if _, err := s.GetUpload(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetUpload(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func testWriteChunks(t *testing.T, s store.Store) {
	want := data(3<<20+4113, 1)
	u := mustNew(t, s, store.Info{Size: int64(len(want))})
	var off int64
	for _, n := range []int{0, 1, 4095, 1 << 20, 2 << 20, 17} {
		mustWrite(t, u, off, want[off:off+int64(n)])
		off += int64(n)
		if got := mustInfo(t, u).Offset; got != off {
			t.Fatalf("after %d bytes: Offset = %d", off, got)
		}
	}
	checkContents(t, u, want)
	if !mustInfo(t, u).Finished() {
		t.Error("upload with every byte is not Finished")
	}
	// A fresh handle sees the same.
	u2, err := s.GetUpload(t.Context(), mustInfo(t, u).ID)
	if err != nil {
		t.Fatal(err)
	}
	checkContents(t, u2, want)
}

// countingReader records how much was read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func testOffsetMismatch(t *testing.T, s store.Store) {
	u := mustNew(t, s, store.Info{Size: 100})
	mustWrite(t, u, 0, data(10, 2))
	for _, off := range []int64{0, 9, 11, 100} {
		src := &countingReader{r: bytes.NewReader(data(5, 3))}
		n, err := u.WriteChunk(t.Context(), off, src)
		if !errors.Is(err, store.ErrOffsetMismatch) || n != 0 {
			t.Errorf("WriteChunk(%d) at offset 10 = %d, %v; want 0, ErrOffsetMismatch", off, n, err)
		}
		if src.n != 0 {
			t.Errorf("WriteChunk(%d) with the wrong offset read %d bytes", off, src.n)
		}
	}
	checkContents(t, u, data(10, 2))
}

func testSizeExceeded(t *testing.T, s store.Store) {
	u := mustNew(t, s, store.Info{Size: 10})
	mustWrite(t, u, 0, []byte("abcd"))
	n, err := u.WriteChunk(t.Context(), 4, bytes.NewReader([]byte("efghijKLMN")))
	if !errors.Is(err, store.ErrSizeExceeded) || n != 6 {
		t.Errorf("WriteChunk past the size = %d, %v; want 6, ErrSizeExceeded", n, err)
	}
	checkContents(t, u, []byte("abcdefghij"))
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

var errSource = errors.New("storetest: source failed")

func testSourceFails(t *testing.T, s store.Store) {
	want := data(2<<20, 4)
	u := mustNew(t, s, store.Info{Size: int64(len(want))})
	mustWrite(t, u, 0, want[:1000])
	n, err := u.WriteChunk(t.Context(), 1000, &failingReader{data: want[1000 : 1<<20], err: errSource})
	if !errors.Is(err, errSource) {
		t.Fatalf("WriteChunk from a failing source = %d, %v; want its error", n, err)
	}
	// Whatever was kept is counted, durable and correct.
	kept := 1000 + n
	if n < 0 || kept > 1<<20 {
		t.Fatalf("WriteChunk kept %d bytes of %d", n, 1<<20-1000)
	}
	checkContents(t, u, want[:kept])
	mustWrite(t, u, kept, want[kept:])
	checkContents(t, u, want)
}

// blockingReader returns data, then blocks until ctx is done.
type blockingReader struct {
	data []byte
	ctx  context.Context
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if len(b.data) > 0 {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	<-b.ctx.Done()
	return 0, context.Cause(b.ctx)
}

func testContextCancelled(t *testing.T, s store.Store) {
	want := data(1<<20, 5)
	u := mustNew(t, s, store.Info{SizeIsDeferred: true})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	n, err := u.WriteChunk(ctx, 0, &blockingReader{data: want, ctx: ctx})
	if err == nil {
		t.Fatalf("WriteChunk cancelled = %d, nil; want an error", n)
	}
	checkContents(t, u, want[:n])
}

func testFinishUpload(t *testing.T, s store.Store) {
	u := mustNew(t, s, store.Info{Size: 4})
	mustWrite(t, u, 0, []byte("ab"))
	if err := u.FinishUpload(t.Context()); err == nil {
		t.Error("FinishUpload of an unfinished upload succeeded")
	}
	mustWrite(t, u, 2, []byte("cd"))
	for range 2 {
		if err := u.FinishUpload(t.Context()); err != nil {
			t.Errorf("FinishUpload = %v", err)
		}
	}
	checkContents(t, u, []byte("abcd"))
}

func testReaderSeeks(t *testing.T, s store.Store) {
	want := data(100000, 6)
	u := mustNew(t, s, store.Info{Size: int64(len(want))})
	mustWrite(t, u, 0, want)
	r, err := u.GetReader(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		t.Skipf("GetReader returns a %T, not an io.ReadSeeker: downloads cannot serve ranges", r)
	}
	if n, err := rs.Seek(0, io.SeekEnd); err != nil || n != int64(len(want)) {
		t.Fatalf("Seek(0, End) = %d, %v; want %d", n, err, len(want))
	}
	if _, err := rs.Seek(5000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 100)
	if _, err := io.ReadFull(rs, got); err != nil || !bytes.Equal(got, want[5000:5100]) {
		t.Errorf("read at 5000 = %v, bytes equal %v", err, bytes.Equal(got, want[5000:5100]))
	}
}

func testParallel(t *testing.T, s store.Store) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			want := data(300000+i, uint64(10+i))
			u, err := s.NewUpload(context.Background(), store.Info{ID: store.NewID(), Size: int64(len(want))})
			if err != nil {
				errs <- err
				return
			}
			for off := 0; off < len(want); off += 65536 {
				end := min(off+65536, len(want))
				if n, err := u.WriteChunk(context.Background(), int64(off), bytes.NewReader(want[off:end])); err != nil || n != int64(end-off) {
					errs <- fmt.Errorf("upload %d: WriteChunk = %d, %v", i, n, err)
					return
				}
			}
			r, err := u.GetReader(context.Background())
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, want) {
				errs <- fmt.Errorf("upload %d: stored bytes differ (%v)", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testTerminater(t *testing.T, s store.Store) {
	term, ok := s.(store.Terminater)
	if !ok {
		t.Skip("no Terminater")
	}
	u := mustNew(t, s, store.Info{Size: 10})
	mustWrite(t, u, 0, []byte("12345"))
	id := mustInfo(t, u).ID
	if err := term.Terminate(t.Context(), u); err != nil {
		t.Fatalf("Terminate = %v", err)
	}
	if _, err := s.GetUpload(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUpload after Terminate = %v, want ErrNotFound", err)
	}
	if err := term.Terminate(t.Context(), u); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Terminate = %v, want ErrNotFound", err)
	}
}

func testLengthDeclarer(t *testing.T, s store.Store) {
	ld, ok := s.(store.LengthDeclarer)
	if !ok {
		t.Skip("no LengthDeclarer")
	}
	u := mustNew(t, s, store.Info{SizeIsDeferred: true})
	mustWrite(t, u, 0, []byte("hello"))
	if info := mustInfo(t, u); !info.SizeIsDeferred || info.Finished() {
		t.Fatalf("deferred upload info = %+v", info)
	}
	if err := ld.DeclareLength(t.Context(), u, 4); !errors.Is(err, store.ErrInvalidLength) {
		t.Errorf("DeclareLength below the offset = %v, want ErrInvalidLength", err)
	}
	if err := ld.DeclareLength(t.Context(), u, 8); err != nil {
		t.Fatalf("DeclareLength(8) = %v", err)
	}
	if info := mustInfo(t, u); info.SizeIsDeferred || info.Size != 8 {
		t.Errorf("after DeclareLength(8): %+v", info)
	}
	if err := ld.DeclareLength(t.Context(), u, 9); !errors.Is(err, store.ErrInvalidLength) {
		t.Errorf("second DeclareLength = %v, want ErrInvalidLength", err)
	}
	if n, err := u.WriteChunk(t.Context(), 5, bytes.NewReader([]byte("world"))); !errors.Is(err, store.ErrSizeExceeded) || n != 3 {
		t.Errorf("WriteChunk past the declared length = %d, %v; want 3, ErrSizeExceeded", n, err)
	}
	checkContents(t, u, []byte("hellowor"))
	if !mustInfo(t, u).Finished() {
		t.Error("not Finished at the declared length")
	}
}

func testConcater(t *testing.T, s store.Store) {
	c, ok := s.(store.Concater)
	if !ok {
		t.Skip("no Concater")
	}
	parts := [][]byte{data(70000, 20), data(1, 21), data(0, 22), data(1<<20, 23)}
	var ups []store.Upload
	var want []byte
	for _, p := range parts {
		u := mustNew(t, s, store.Info{Size: int64(len(p)), IsPartial: true})
		mustWrite(t, u, 0, p)
		ups = append(ups, u)
		want = append(want, p...)
	}
	final := mustNew(t, s, store.Info{Size: int64(len(want)), IsFinal: true})
	if err := c.Concat(t.Context(), final, ups); err != nil {
		t.Fatalf("Concat = %v", err)
	}
	checkContents(t, final, want)
	if !mustInfo(t, final).Finished() {
		t.Error("final upload not Finished after Concat")
	}
	// Partials stay usable.
	checkContents(t, ups[0], parts[0])

	unfinished := mustNew(t, s, store.Info{Size: 10, IsPartial: true})
	mustWrite(t, unfinished, 0, []byte("12345"))
	final2 := mustNew(t, s, store.Info{Size: 10 + int64(len(parts[1])), IsFinal: true})
	if err := c.Concat(t.Context(), final2, []store.Upload{ups[1], unfinished}); !errors.Is(err, store.ErrNotFinished) {
		t.Errorf("Concat with an unfinished partial = %v, want ErrNotFinished", err)
	}
	if info := mustInfo(t, final2); info.Offset != 0 {
		t.Errorf("failed Concat left offset %d", info.Offset)
	}
}

func testLister(t *testing.T, s store.Store) {
	l, ok := s.(store.Lister)
	if !ok {
		t.Skip("no Lister")
	}
	var want []string
	for range 3 {
		want = append(want, mustInfo(t, mustNew(t, s, store.Info{Size: 1})).ID)
	}
	got, err := l.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
	if term, ok := s.(store.Terminater); ok {
		u, _ := s.GetUpload(t.Context(), want[0])
		if err := term.Terminate(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		got, _ = l.List(t.Context())
		if slices.Contains(got, want[0]) {
			t.Errorf("List after Terminate still has %s", want[0])
		}
	}
}

// testUsage checks that what store.MeasureUsage finds follows every
// change: the count a handler keeps of what the store holds starts there.
func testUsage(t *testing.T, s store.Store) {
	if _, ok := s.(store.Lister); !ok {
		if _, _, err := store.MeasureUsage(t.Context(), s); !errors.Is(err, store.ErrNoUsage) {
			t.Errorf("MeasureUsage of a store without Lister = %v, want ErrNoUsage", err)
		}
		return
	}
	want, uploads := int64(0), 0
	check := func(what string) {
		t.Helper()
		n, got, err := store.MeasureUsage(t.Context(), s)
		if err != nil || n != uploads || got != want {
			t.Fatalf("after %s: MeasureUsage = %d uploads, %d bytes, %v; want %d, %d", what, n, got, err, uploads, want)
		}
	}
	check("nothing")
	info := store.Info{Size: 300, MetaData: map[string]string{"filename": "u.bin"}, Name: "u.bin"}
	u := mustNew(t, s, info)
	uploads, want = 1, store.Footprint(info)
	check("NewUpload")
	mustWrite(t, u, 0, data(100, 40))
	want += 100
	check("WriteChunk")
	if n, err := u.WriteChunk(t.Context(), 100, bytes.NewReader(data(250, 41))); !errors.Is(err, store.ErrSizeExceeded) || n != 200 {
		t.Fatalf("WriteChunk past the size = %d, %v", n, err)
	}
	want += 200
	check("WriteChunk past the size")
	if aw, ok := s.(store.AtomicWriter); ok {
		v := mustNew(t, s, store.Info{Size: 10})
		uploads, want = uploads+1, want+store.Footprint(store.Info{Size: 10})
		aw.WriteChunkAtomic(t.Context(), v, 0, bytes.NewReader(data(10, 42)), func() error { return errSource })
		check("a failed WriteChunkAtomic")
	}
	if c, ok := s.(store.Concater); ok {
		final := store.Info{Size: 300, IsFinal: true, PartialUploads: []string{mustInfo(t, u).ID}}
		f := mustNew(t, s, final)
		uploads, want = uploads+1, want+store.Footprint(final)
		if err := c.Concat(t.Context(), f, []store.Upload{u}); err != nil {
			t.Fatal(err)
		}
		want += 300
		check("Concat")
	}
	if term, ok := s.(store.Terminater); ok {
		before := mustInfo(t, u)
		if err := term.Terminate(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		uploads, want = uploads-1, want-store.Footprint(before)
		check("Terminate")
	}
}

func testAtomicWriter(t *testing.T, s store.Store) {
	aw, ok := s.(store.AtomicWriter)
	if !ok {
		t.Skip("no AtomicWriter")
	}
	want := data(3<<20, 30)
	u := mustNew(t, s, store.Info{Size: int64(len(want))})
	mustWrite(t, u, 0, want[:100])

	errCheck := errors.New("checksum mismatch")
	n, err := aw.WriteChunkAtomic(t.Context(), u, 100, bytes.NewReader(want[100:2<<20]), func() error { return errCheck })
	if !errors.Is(err, errCheck) || n != 0 {
		t.Errorf("WriteChunkAtomic with a failing check = %d, %v; want 0, the check's error", n, err)
	}
	checkContents(t, u, want[:100])

	n, err = aw.WriteChunkAtomic(t.Context(), u, 100, &failingReader{data: want[100 : 1<<20], err: errSource}, func() error { return nil })
	if !errors.Is(err, errSource) || n != 0 {
		t.Errorf("WriteChunkAtomic from a failing source = %d, %v; want 0, its error", n, err)
	}
	checkContents(t, u, want[:100])

	if n, err := aw.WriteChunkAtomic(t.Context(), u, 5, bytes.NewReader(want[5:10]), func() error { return nil }); !errors.Is(err, store.ErrOffsetMismatch) || n != 0 {
		t.Errorf("WriteChunkAtomic at the wrong offset = %d, %v", n, err)
	}

	checked := false
	n, err = aw.WriteChunkAtomic(t.Context(), u, 100, bytes.NewReader(want[100:]), func() error { checked = true; return nil })
	if err != nil || n != int64(len(want)-100) || !checked {
		t.Errorf("WriteChunkAtomic = %d, %v (checked %v); want %d, nil", n, err, checked, len(want)-100)
	}
	checkContents(t, u, want)
}

func testLocker(t *testing.T, s store.Store) {
	l, ok := s.(store.Locker)
	if !ok {
		t.Skip("no Locker: a handler uses a store.MemoryLocker")
	}
	TestLocker(t, l)
}

// TestLocker checks the contract of a [store.Locker].
func TestLocker(t *testing.T, l store.Locker) {
	id := store.NewID()
	a, err := l.NewLock(id)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{}, 100)
	if err := a.Lock(t.Context(), func() { released <- struct{}{} }); err != nil {
		t.Fatalf("Lock = %v", err)
	}

	// A second lock waits, asks the holder to release, and times out.
	b, _ := l.NewLock(id)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	err = b.Lock(ctx, nil)
	cancel()
	if !errors.Is(err, store.ErrLockTimeout) {
		t.Fatalf("Lock of a held lock = %v, want ErrLockTimeout", err)
	}
	select {
	case <-released:
	default:
		t.Error("a waiting Lock did not ask the holder to release")
	}

	// Another ID is independent.
	other, _ := l.NewLock(store.NewID())
	if err := other.Lock(t.Context(), nil); err != nil {
		t.Fatalf("Lock of another ID = %v", err)
	}
	other.Unlock()

	// The holder gives in when asked: the waiter gets the lock.
	c, _ := l.NewLock(id)
	done := make(chan error, 1)
	go func() { done <- c.Lock(context.Background(), nil) }()
	<-released
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Lock after Unlock = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lock did not get the released lock")
	}
	if err := c.Unlock(); err != nil {
		t.Fatal(err)
	}
}
