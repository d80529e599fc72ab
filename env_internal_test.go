package ferry

import (
	"context"
	"testing"

	"golang.org/x/time/rate"
)

// A task's own budget applies within the session's: its bytes wait for
// both, in pieces neither would refuse.
func TestTaskBudget(t *testing.T) {
	plain, err := NewSession(Config{Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if l := plain.env(nil, "http://h/", nil, 0).Limiter; l != nil {
		t.Errorf("no budget anywhere: %v", l)
	}
	own, ok := plain.env(nil, "http://h/", nil, 1000).Limiter.(*rate.Limiter)
	if !ok || own.Limit() != 1000 || own.Burst() != 1000 {
		t.Errorf("a task's own budget: %#v", own)
	}

	capped, err := NewSession(Config{Ephemeral: true, RateLimit: 10 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer capped.Close()
	if l, ok := capped.env(nil, "http://h/", nil, 0).Limiter.(*rate.Limiter); !ok || l != capped.limiter {
		t.Errorf("the session's budget alone: %#v", l)
	}
	both, ok := capped.env(nil, "http://h/", nil, 4096).Limiter.(bothLimits)
	if !ok || both.Burst() != 4096 || both[1] != capped.limiter {
		t.Fatalf("a task's budget within the session's: %#v", both)
	}
	// A wait past what the task's budget holds is refused without waiting:
	// the task's limiter is consulted.
	if err := both.WaitN(context.Background(), 8192); err == nil {
		t.Error("a wait for more than the task's burst succeeded")
	}
}
