package resumable

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/memstore"
)

// The list of waiting final uploads is bounded, and forgetting one frees
// its entries at once.
func TestWaitListBounded(t *testing.T) {
	var w waitList
	partials := make([]string, 1000)
	for i := range partials {
		partials[i] = fmt.Sprintf("p%d", i)
	}
	for i := range maxWaiting/len(partials) + 5 {
		w.add(fmt.Sprintf("f%d", i), partials)
	}
	if w.entries != maxWaiting || len(w.finals) != maxWaiting/len(partials) {
		t.Fatalf("%d entries for %d finals, want at most %d", w.entries, len(w.finals), maxWaiting)
	}
	if got := len(w.finalsOf("p7")); got != maxWaiting/len(partials) {
		t.Errorf("%d finals wait for p7", got)
	}
	w.forget("f0")
	w.add("late", partials[:10])
	if got := w.finalsOf("p3"); len(got) != maxWaiting/len(partials) {
		t.Errorf("after forgetting one and adding another: %d finals wait for p3", len(got))
	}
	for f := range w.finals {
		w.forget(f)
	}
	if w.entries != 0 || len(w.waiters) != 0 {
		t.Errorf("after forgetting all: %d entries, %d partials", w.entries, len(w.waiters))
	}
}

// countingStore counts the GetInfo calls on its uploads.
type countingStore struct {
	*memstore.Store
	infos atomic.Int64
}

func (s *countingStore) GetUpload(ctx context.Context, id string) (store.Upload, error) {
	up, err := s.Store.GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return &countingUpload{up, &s.infos}, nil
}

type countingUpload struct {
	store.Upload
	n *atomic.Int64
}

func (u *countingUpload) GetInfo(ctx context.Context) (store.Info, error) {
	u.n.Add(1)
	return u.Upload.GetInfo(ctx)
}

// A new final upload reads each of its partial uploads' state once.
func TestFinalInfoReadsEachPartialOnce(t *testing.T) {
	st := &countingStore{Store: memstore.New()}
	h, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var ids []string
	for range 3 {
		info := store.Info{ID: store.NewID(), IsPartial: true, Size: 10}
		if _, err := st.Store.NewUpload(t.Context(), info); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID)
	}
	var final store.Info
	if e := h.finalInfo(t.Context(), ids, &final); e != nil {
		t.Fatal(e)
	}
	if final.Size != 30 || st.infos.Load() != 3 {
		t.Errorf("final size %d after %d GetInfo calls, want 30 after 3", final.Size, st.infos.Load())
	}
}
