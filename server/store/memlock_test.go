package store_test

import (
	"testing"

	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/storetest"
)

func TestMemoryLocker(t *testing.T) {
	storetest.TestLocker(t, &store.MemoryLocker{})
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := store.NewID()
		if !store.ValidID(id) || seen[id] {
			t.Fatalf("NewID = %q (valid %v, repeated %v)", id, store.ValidID(id), seen[id])
		}
		seen[id] = true
	}
	for _, id := range []string{"", "..", "../../etc/passwd", "0123456789abcdef0123456789abcdeF", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0"} {
		if store.ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}
