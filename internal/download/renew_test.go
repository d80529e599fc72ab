package download

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/tcpinfo"
	"github.com/ferryhq/ferry/internal/transfer"
)

func TestLossLimited(t *testing.T) {
	const ms = time.Millisecond
	base := 50 * ms
	at := func(segs, ooo uint32, rtt time.Duration) tcpinfo.Info {
		return tcpinfo.Info{SegsIn: segs, OutOfOrder: ooo, RTT: rtt, MinRTT: base}
	}
	for _, c := range []struct {
		name       string
		from, to   tcpinfo.Info
		peak, base time.Duration
		want       bool
	}{
		{"random loss, no queue", at(0, 0, 0), at(700, 90, 51*ms), 0, base, true},
		{"loss with a queue (a full link)", at(0, 0, 0), at(700, 90, 70*ms), 0, base, false},
		{"a queue that built up and drained again", at(0, 0, 0), at(700, 90, 51*ms), 90 * ms, base, false},
		{"no loss", at(0, 0, 0), at(700, 0, 50*ms), 0, base, false},
		{"too little loss", at(0, 0, 0), at(1000, 4, 50*ms), 0, base, false},
		{"too few segments to judge", at(0, 0, 0), at(40, 20, 50*ms), 0, base, false},
		{"counted since the request began", at(10000, 500, 50*ms), at(10700, 500, 50*ms), 0, base, false},
		{"counters that wrapped", at(^uint32(0)-100, ^uint32(0)-10, 0), at(600, 80, 50*ms), 0, base, true},
		{"scheduling noise is not a queue", at(0, 0, 0), at(700, 90, 3*ms+900*time.Microsecond), 0, 3 * ms, true},
		{"loopback or a LAN: reordered, not lost", at(0, 0, 0), at(264, 3, 121*time.Microsecond), 0, 3 * time.Microsecond, false},
		{"no base yet", at(0, 0, 0), at(700, 90, 90*ms), 0, 0, true},
	} {
		if got := lossLimited(c.from, c.to, c.peak, c.base); got != c.want {
			t.Errorf("%s: lossLimited = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestBaseRTT(t *testing.T) {
	var b baseRTT
	for _, c := range []struct{ in, want time.Duration }{
		{0, 0},
		{60 * time.Millisecond, 60 * time.Millisecond},
		{80 * time.Millisecond, 60 * time.Millisecond},
		{50 * time.Millisecond, 50 * time.Millisecond},
		{0, 50 * time.Millisecond},
	} {
		if got := b.observe(c.in); got != c.want {
			t.Errorf("observe(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// A worker told to renew asks for its connection to end with each request
// after its first, so no connection carries more than one of those: there
// are at least as many connections as GETs beyond the workers' first ones.
// Nothing fails or is fetched twice, and the file is right.
func TestRenewedConnections(t *testing.T) {
	content := make([]byte, 6<<20+12345)
	rand.Read(content)
	sum := sha256.Sum256(content)
	for _, renew := range []bool{false, true} {
		var conns, gets atomic.Int64
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			if r.Method == http.MethodGet {
				gets.Add(1)
			}
			http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(content))
		}))
		ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		ts.Start()
		defer ts.Close()

		old := renewConn
		renewConn = func(*connWatch, *baseRTT) bool { return renew }
		defer func() { renewConn = old }()

		var retries int
		j := &Job{
			Env: &send.Env{
				Client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}},
				URL:    ts.URL,
				Emit: func(e transfer.Event) {
					switch e.(type) {
					case transfer.RetryEvent, transfer.RestartEvent:
						retries++
					}
				},
			},
			Path:        filepath.Join(t.TempDir(), "o"),
			Saved:       NewMemState(nil),
			Connections: 4,
			Hash:        true,
		}
		res, err := Run(context.Background(), j)
		if err != nil {
			t.Fatalf("renew=%v: %v", renew, err)
		}
		if res.SHA256 != hex.EncodeToString(sum[:]) || res.Downloaded != int64(len(content)) {
			t.Fatalf("renew=%v: sha %s, downloaded %d of %d", renew, res.SHA256, res.Downloaded, len(content))
		}
		if retries != 0 {
			t.Errorf("renew=%v: %d retries, want none", renew, retries)
		}
		n, g := conns.Load(), gets.Load()
		if g < 6 {
			t.Fatalf("renew=%v: only %d GETs; the test needs several per worker", renew, g)
		}
		switch {
		case renew && n < g-4:
			t.Errorf("renewing: %d connections for %d GETs by 4 workers, want at least %d", n, g, g-4)
		case !renew && n >= g-4:
			// Usually 4 or 5; more when a request dialled while another
			// worker's connection was on its way back to the pool.
			t.Errorf("not renewing: %d connections for %d GETs by 4 workers, want fewer than %d", n, g, g-4)
		}
	}
}
