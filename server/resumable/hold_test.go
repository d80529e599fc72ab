package resumable_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/filestore"
)

// holdEnv is a Handler over a fresh filestore, used through Hold by a
// handler of its own, as server/stream uses it.
func holdEnv(t *testing.T, storage *store.Meter) (*resumable.Handler, *filestore.FileStore) {
	t.Helper()
	st, err := filestore.New(filestore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := resumable.New(resumable.Config{Store: st, Storage: storage, Expiry: -1, Logger: ferrytest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, st
}

func stored(t *testing.T, up store.Upload) []byte {
	t.Helper()
	rd, err := up.GetReader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHoldAppendsTellsAndCompletes(t *testing.T) {
	meter := store.NewMeter(store.MeterConfig{})
	h, _ := holdEnv(t, meter)
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	o, err := h.Create(httptest.NewRecorder(), r, store.Info{SizeIsDeferred: true, Name: "live"})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Release()
	var seen bytes.Buffer
	var durable []int64
	a := resumable.Appending{
		Pieces: store.Pieces{Bytes: 4},
		Read: func(p []byte, off int64) {
			if off != int64(seen.Len()) {
				t.Errorf("told offset %d after %d bytes", off, seen.Len())
			}
			seen.Write(p)
		},
		Durable: func(off int64) { durable = append(durable, off) },
	}
	info, err := o.Append(strings.NewReader("0123456789"), a)
	if err != nil || info.Offset != 10 {
		t.Fatalf("append: offset %d, %v", info.Offset, err)
	}
	if info, err = o.Append(strings.NewReader("ab"), a); err != nil || info.Offset != 12 {
		t.Fatalf("second append: offset %d, %v", info.Offset, err)
	}
	if seen.String() != "0123456789ab" {
		t.Errorf("Read saw %q", seen.String())
	}
	if want := []int64{4, 8}; len(durable) < 2 || durable[0] != want[0] || durable[1] != want[1] {
		t.Errorf("durable offsets %v, want %v first", durable, want)
	}
	if info, err = o.Complete(); err != nil || !info.Finished() || info.Size != 12 {
		t.Fatalf("complete: %+v, %v", info, err)
	}
	if got := stored(t, o.Upload()); string(got) != "0123456789ab" {
		t.Errorf("stored %q", got)
	}
	if want := store.Footprint(info); meter.Used() != want {
		t.Errorf("storage counts %d, want the upload's footprint %d", meter.Used(), want)
	}
	if err := o.Terminate(); err != nil {
		t.Fatal(err)
	}
	if meter.Used() != 0 {
		t.Errorf("storage counts %d after Terminate, want 0", meter.Used())
	}
}

func TestHoldStorageFullKeepsWhatFits(t *testing.T) {
	info0 := store.Info{SizeIsDeferred: true}
	meter := store.NewMeter(store.MeterConfig{Max: store.Footprint(info0) + 5})
	h, _ := holdEnv(t, meter)
	o, err := h.Create(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil), info0)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Release()
	var told int
	info, err := o.Append(strings.NewReader("0123456789"), resumable.Appending{Read: func(p []byte, _ int64) { told += len(p) }})
	if !errors.Is(err, resumable.ErrStorageFull) {
		t.Fatalf("append past the storage: %v, want ErrStorageFull", err)
	}
	if info.Offset != 5 || told != 5 {
		t.Errorf("kept %d bytes and told of %d, want the 5 that fit", info.Offset, told)
	}
	if got := stored(t, o.Upload()); string(got) != "01234" {
		t.Errorf("stored %q", got)
	}
}

func TestHoldTakeOver(t *testing.T) {
	h, _ := holdEnv(t, nil)
	o, err := h.Create(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil), store.Info{SizeIsDeferred: true})
	if err != nil {
		t.Fatal(err)
	}
	id := o.Info().ID
	o.Release()

	// A request whose content arrives, then stops without ending.
	pr, pw := io.Pipe()
	defer pw.Close()
	got := make(chan struct{})
	var once sync.Once
	result := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := h.Hold(w, r, id, true)
		if err != nil {
			result <- err
			return
		}
		defer o.Release()
		_, err = o.Append(r.Body, resumable.Appending{Read: func([]byte, int64) { once.Do(func() { close(got) }) }})
		result <- err
	}))
	defer srv.Close()
	go func() {
		req, _ := http.NewRequest(http.MethodPut, srv.URL, pr)
		if resp, err := srv.Client().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := pw.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	<-got

	// Its content has not stalled: a plain Hold would wait; takeOver
	// does not.
	next, err := h.Hold(httptest.NewRecorder(), httptest.NewRequest(http.MethodHead, "/", nil), id, true)
	if err != nil {
		t.Fatalf("take over: %v", err)
	}
	defer next.Release()
	if err := <-result; !errors.Is(err, resumable.ErrInterrupted) {
		t.Errorf("the request taken over ended with %v, want ErrInterrupted", err)
	}
	if next.Info().Offset != 3 {
		t.Errorf("offset after takeover %d, want the 3 bytes that arrived", next.Info().Offset)
	}
}

func TestHandlerTerminate(t *testing.T) {
	meter := store.NewMeter(store.MeterConfig{})
	h, st := holdEnv(t, meter)
	o, err := h.Create(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil), store.Info{SizeIsDeferred: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Append(strings.NewReader("data"), resumable.Appending{}); err != nil {
		t.Fatal(err)
	}
	id := o.Info().ID
	o.Release()
	if err := h.Terminate(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetUpload(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("upload after Terminate: %v, want not found", err)
	}
	if meter.Used() != 0 {
		t.Errorf("storage counts %d after Terminate, want 0", meter.Used())
	}
	if err := h.Terminate(context.Background(), id); !errors.Is(err, resumable.ErrNotFound) {
		t.Errorf("second Terminate: %v, want ErrNotFound", err)
	}
}
