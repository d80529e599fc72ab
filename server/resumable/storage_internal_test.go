package resumable

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A refusal is decided and explained in one look at the storage: bytes
// released in between (another upload removed) cannot send the
// explanation to a room there is none of (MaxStorage alone), nor make it
// say "full" of bytes that fit.
func TestStorageRefusal(t *testing.T) {
	s := &storage{max: 100, used: 100}
	if e := s.check(50); !errors.Is(e, ErrStorageFull) || !strings.Contains(e.Detail, "limit of 100") {
		t.Errorf("check(50) of a full storage = %v, want ErrStorageFull naming the limit", e)
	}
	if e := s.take(50); !errors.Is(e, ErrStorageFull) {
		t.Errorf("take(50) of a full storage = %v, want ErrStorageFull", e)
	}
	s.release(100) // another request removed an upload meanwhile
	if e := s.take(50); e != nil {
		t.Errorf("take(50) after a release = %v, want nil", e)
	}

	room := &storage{room: &roomMeter{measure: func() (int64, bool) { return 10, true }, now: time.Now}}
	if e := room.take(11); !errors.Is(e, ErrStorageFull) || !strings.Contains(e.Detail, "room for 10") {
		t.Errorf("take(11) with room for 10 = %v, want ErrStorageFull naming the room", e)
	}
}
