package setting

import (
	"testing"
	"time"
)

func TestResolve(t *testing.T) {
	if got := Resolve(0, 5); got != 5 {
		t.Errorf("Resolve(0, 5) = %d, want the default", got)
	}
	if got := Resolve(-3, 5); got != 0 {
		t.Errorf("Resolve(-3, 5) = %d, want 0 (off)", got)
	}
	if got := Resolve(7*time.Second, time.Minute); got != 7*time.Second {
		t.Errorf("Resolve(7s, 1m) = %v, want 7s", got)
	}
	if got := Resolve(-0.5, 20.0); got != 0 {
		t.Errorf("Resolve(-0.5, 20) = %v, want 0 (off)", got)
	}
}
