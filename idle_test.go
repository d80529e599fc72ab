package ferry_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryhq/ferry"
)

// pipeListener is an in-memory network for a synctest bubble: each dial
// is one net.Pipe, whose waits the bubble's fake clock sees through.
type pipeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// A transfer that is slow but keeps moving is not cut by an idle timeout
// shorter than the whole transfer, while one whose gap passes the timeout
// is. The network is in memory and the clock fake (testing/synctest), so
// the gaps are what they say however loaded the machine.
func TestIdleTimeoutSpansGapsNotTheTransfer(t *testing.T) {
	for _, tc := range []struct {
		name string
		gap  time.Duration
		idle bool
	}{
		{"1 KiB every 100 ms for 2 s, idle timeout 1 s", 100 * time.Millisecond, false},
		{"a gap of 1.5 s, idle timeout 1 s", 1500 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proto(t, func(t *testing.T, h2 bool) {
				synctest.Test(t, func(t *testing.T) { idleGaps(t, h2, tc.gap, tc.idle) })
			})
		})
	}
}

// idleGaps downloads from a server that sends 20 KiB a KiB at a time, gap
// apart, with an idle timeout of 1 s and no retries; idle says the
// download must fail with ErrIdleTimeout, else it must succeed.
func idleGaps(t *testing.T, h2 bool, gap time.Duration, idle bool) {
	const chunks, chunk = 20, 1 << 10
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h2 && r.ProtoMajor != 2 {
			t.Errorf("%s request over h2c", r.Proto)
		}
		w.Header().Set("Content-Length", strconv.Itoa(chunks*chunk))
		w.Header().Set("ETag", `"v1"`)
		if r.Method == http.MethodHead {
			return
		}
		for range chunks {
			if _, err := w.Write(make([]byte, chunk)); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			select {
			case <-time.After(gap):
			case <-r.Context().Done():
				return
			}
		}
	})}
	tr := &http.Transport{}
	if h2 {
		srv.Protocols, tr.Protocols = new(http.Protocols), new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	l := newPipeListener()
	tr.DialContext = l.dial
	go srv.Serve(l)
	defer srv.Close()
	defer tr.CloseIdleConnections()

	cfg := testConfig(false)
	cfg.Transport = tr
	cfg.IdleTimeout = time.Second
	cfg.Retry.MaxAttempts = -1
	s, err := ferry.NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, _, err = download(t, s, ferry.DownloadRequest{URL: "http://origin/file", Path: filepath.Join(t.TempDir(), "f"), Connections: 1})
	switch took := time.Since(start); {
	case idle && !errors.Is(err, ferry.ErrIdleTimeout):
		t.Errorf("err = %v after %v, want the idle timeout", err, took)
	case !idle && err != nil:
		t.Errorf("a moving transfer failed after %v: %v", took, err)
	}
}
