package resumable

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// The limiter's memory stays bounded however many clients come: clients
// whose allowance is whole again are forgotten, and past maxClients new
// ones share one allowance.
func TestCreationLimiterBounded(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := newCreationLimiter(1, 2, func() time.Time { return now })
	req := func(i int) *http.Request {
		return &http.Request{RemoteAddr: fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255)}
	}
	for i := range maxClients {
		if ok, _ := l.allow(req(i)); !ok {
			t.Fatalf("client %d refused its first creation", i)
		}
	}
	// Past the bound, new clients share one allowance.
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.allow(req(maxClients + i)); ok != want {
			t.Errorf("client %d past the bound: allowed %v, want %v", i, ok, want)
		}
	}
	if len(l.buckets) != maxClients {
		t.Fatalf("%d clients remembered, want %d", len(l.buckets), maxClients)
	}
	now = now.Add(3 * time.Second) // every allowance is whole again
	if ok, _ := l.allow(req(maxClients + 30)); !ok {
		t.Error("a new client was refused once the others were forgotten")
	}
	if len(l.buckets) != 1 {
		t.Errorf("%d clients remembered after pruning, want 1", len(l.buckets))
	}
	if ok, wait := l.allow(req(maxClients + 30)); !ok || wait != 0 {
		t.Errorf("second creation of a burst of 2 = %v, %v", ok, wait)
	}
	if ok, wait := l.allow(req(maxClients + 30)); ok || wait != time.Second {
		t.Errorf("third creation = %v, wait %v; want refused, 1s", ok, wait)
	}
}
