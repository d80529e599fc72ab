package resumable

import (
	"fmt"
	"testing"
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
