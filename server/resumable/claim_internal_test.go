package resumable

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ferryhq/ferry/server/store/memstore"
)

// A negative StallTimeout turns takeovers off: a request whose content
// stalled keeps its upload however long (until the server's own idle
// timeout ends it); 0 is the default.
func TestStallTimeoutOff(t *testing.T) {
	for _, c := range []struct {
		stall    time.Duration
		takeover bool
	}{{0, true}, {-1, false}} {
		h, err := New(Config{Store: memstore.New(), StallTimeout: c.stall})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		ctx, stop := context.WithCancelCause(context.Background())
		cl := &claim{h: h, id: "x", ctx: ctx, stop: stop, rc: http.NewResponseController(httptest.NewRecorder())}
		cl.streaming.Store(true)
		cl.lastRead.Store(time.Now().Add(-24 * time.Hour).UnixNano())
		cl.requestRelease()
		if got := ctx.Err() != nil; got != c.takeover {
			t.Errorf("StallTimeout %v: a request stalled for a day taken over: %v, want %v", c.stall, got, c.takeover)
		}
		if h.lockTimeout != DefaultStallTimeout+3*time.Second {
			t.Errorf("StallTimeout %v: LockTimeout %v, want %v", c.stall, h.lockTimeout, DefaultStallTimeout+3*time.Second)
		}
	}
}
