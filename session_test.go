package ferry_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// proto runs f once over HTTP/1.1 and once over HTTP/2 (h2c), like net/http's
// clientserver tests.
func proto(t *testing.T, f func(t *testing.T, h2 bool)) {
	t.Run("h1", func(t *testing.T) { f(t, false) })
	t.Run("h2", func(t *testing.T) { f(t, true) })
}

func newServer(t *testing.T, h2 bool, opts ...ferrytest.Option) *ferrytest.Server {
	if h2 {
		opts = append(opts, ferrytest.HTTP2())
	}
	return ferrytest.NewServer(t, opts...)
}

// testConfig is a config with quick retries, so fault tests run fast.
func testConfig(h2 bool) ferry.Config {
	cfg := ferry.DefaultConfig()
	cfg.HTTP2PriorKnowledge = h2
	cfg.Retry = ferry.RetryPolicy{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	cfg.IdleTimeout = 5 * time.Second
	return cfg
}

func mustSession(t *testing.T, cfg ferry.Config) *ferry.Session {
	t.Helper()
	s, err := ferry.NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// download runs one download to completion and collects its events.
func download(t *testing.T, s *ferry.Session, req ferry.DownloadRequest) (*ferry.Result, []ferry.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	task, err := s.Download(ctx, req)
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	var events []ferry.Event
	for ev := range task.Events() {
		events = append(events, ev)
	}
	res, err := task.Wait(ctx)
	return res, events, err
}

// assertNoLeftovers checks that nothing but the final file is in dir.
func assertNoLeftovers(t *testing.T, dir string, final string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != final {
			t.Errorf("left behind in the destination directory: %s", e.Name())
		}
	}
}

func count[E ferry.Event](events []ferry.Event) (n int) {
	for _, ev := range events {
		if _, ok := ev.(E); ok {
			n++
		}
	}
	return n
}

// Every fault of ferrytest ends in the right file or a typed error, never a
// wrong file under the final name, over HTTP/1.1 and HTTP/2.
func TestDownloadFaults(t *testing.T) {
	const size = 1 << 20
	tests := []struct {
		name    string
		opts    []ferrytest.Option
		cfg     func(*ferry.Config)
		wantErr func(error) bool // nil: must succeed
		check   func(t *testing.T, res *ferry.Result, events []ferry.Event)
	}{
		{name: "plain"},
		{
			name: "drop after N bytes, resumed twice",
			opts: []ferrytest.Option{ferrytest.DropAfter(300<<10, 2)},
			check: func(t *testing.T, res *ferry.Result, events []ferry.Event) {
				if n := count[ferry.RetryEvent](events); n != 2 {
					t.Errorf("retries = %d, want 2", n)
				}
				if n := count[ferry.RestartEvent](events); n != 0 {
					t.Errorf("restarts = %d, want 0 (each drop resumes)", n)
				}
				if res.Downloaded != size {
					t.Errorf("downloaded %d bytes in all, want exactly %d: nothing fetched twice", res.Downloaded, size)
				}
			},
		},
		{
			name: "ignore range: restart from zero",
			opts: []ferrytest.Option{ferrytest.IgnoreRange(), ferrytest.DropAfter(300<<10, 1)},
			check: func(t *testing.T, res *ferry.Result, events []ferry.Event) {
				if n := count[ferry.RestartEvent](events); n != 1 {
					t.Errorf("restarts = %d, want 1", n)
				}
			},
		},
		{name: "no Accept-Ranges", opts: []ferrytest.Option{ferrytest.AcceptRanges(false), ferrytest.DropAfter(300<<10, 1)}},
		{
			name: "ETag changes mid-download: the new version, whole",
			opts: []ferrytest.Option{ferrytest.ChangeETagAfter(1), ferrytest.ChangedSize(size + 12345), ferrytest.DropAfter(300<<10, 1)},
			check: func(t *testing.T, res *ferry.Result, events []ferry.Event) {
				if res.Size != size+12345 {
					t.Errorf("size = %d, want the new version's %d", res.Size, size+12345)
				}
				if n := count[ferry.RestartEvent](events); n != 1 {
					t.Errorf("restarts = %d, want 1", n)
				}
			},
		},
		{name: "HEAD refused (405)", opts: []ferrytest.Option{ferrytest.RefuseHEAD(405), ferrytest.DropAfter(300<<10, 1)}},
		{name: "HEAD refused (403)", opts: []ferrytest.Option{ferrytest.RefuseHEAD(403)}},
		{name: "slow first byte", opts: []ferrytest.Option{ferrytest.SlowFirstByte(300 * time.Millisecond)}},
		{
			name: "503 with Retry-After",
			opts: []ferrytest.Option{ferrytest.RetryAfter(503, "1", 2)},
			check: func(t *testing.T, res *ferry.Result, events []ferry.Event) {
				for _, ev := range events {
					if r, ok := ev.(ferry.RetryEvent); ok && r.Delay != time.Second {
						t.Errorf("retry delay %v, want the server's Retry-After of 1s", r.Delay)
					}
				}
				if n := count[ferry.RetryEvent](events); n != 2 {
					t.Errorf("retries = %d, want 2", n)
				}
			},
		},
		{name: "429 with Retry-After date", opts: []ferrytest.Option{ferrytest.RetryAfter(429, time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 1)}},
		{name: "500 twice", opts: []ferrytest.Option{ferrytest.Status(500, 2)}},
		{
			name: "404",
			opts: []ferrytest.Option{ferrytest.Status(404, 100)},
			wantErr: func(err error) bool {
				se, ok := errors.AsType[*ferry.StatusError](err)
				return ok && se.StatusCode == 404
			},
		},
		{
			name: "retries exhausted",
			opts: []ferrytest.Option{ferrytest.Status(503, 100)},
			cfg:  func(c *ferry.Config) { c.Retry.MaxAttempts = 3 },
			wantErr: func(err error) bool {
				se, ok := errors.AsType[*ferry.StatusError](err)
				return ok && se.StatusCode == 503
			},
		},
		{name: "wrong Content-Range once", opts: []ferrytest.Option{ferrytest.WrongContentRange(1), ferrytest.DropAfter(300<<10, 1)}},
		{
			name: "wrong Content-Range always: whole-file fallback",
			opts: []ferrytest.Option{ferrytest.WrongContentRange(1000), ferrytest.DropAfter(300<<10, 1)},
			check: func(t *testing.T, res *ferry.Result, events []ferry.Event) {
				if n := count[ferry.RestartEvent](events); n != 1 {
					t.Errorf("restarts = %d, want 1", n)
				}
			},
		},
		{name: "gzip on a ranged response", opts: []ferrytest.Option{ferrytest.GzipRanged(), ferrytest.DropAfter(300<<10, 1)}},
		{
			name: "stall: idle timeout, then resume",
			opts: []ferrytest.Option{ferrytest.Stall(300<<10, 10*time.Second, 1)},
			cfg:  func(c *ferry.Config) { c.IdleTimeout = 300 * time.Millisecond },
			check: func(t *testing.T, res *ferry.Result, events []ferry.Event) {
				for _, ev := range events {
					if r, ok := ev.(ferry.RetryEvent); ok && !errors.Is(r.Err, ferry.ErrIdleTimeout) {
						t.Errorf("retry because of %v, want ErrIdleTimeout", r.Err)
					}
				}
				if n := count[ferry.RetryEvent](events); n != 1 {
					t.Errorf("retries = %d, want 1", n)
				}
			},
		},
		{
			name: "stall with no retries: typed timeout",
			opts: []ferrytest.Option{ferrytest.Stall(300<<10, 10*time.Second, 1)},
			cfg:  func(c *ferry.Config) { c.IdleTimeout = 300 * time.Millisecond; c.Retry.MaxAttempts = -1 },
			wantErr: func(err error) bool {
				fe, ok := errors.AsType[*ferry.Error](err)
				return ok && fe.Timeout() && errors.Is(err, ferry.ErrIdleTimeout)
			},
		},
		{name: "no validators: restart instead of a blind resume", opts: []ferrytest.Option{ferrytest.NoValidators(), ferrytest.DropAfter(300<<10, 1)}},
		{
			// RFC 9110 §13.1.5: no weak tag in If-Range, and no date while
			// an entity tag exists, so nothing can prove a range belongs:
			// start over rather than splice.
			name: "weak ETag: restart, never an unprovable resume",
			opts: []ferrytest.Option{ferrytest.WeakETag(), ferrytest.DropAfter(300<<10, 1)},
			check: func(t *testing.T, res *ferry.Result, events []ferry.Event) {
				if n := count[ferry.RestartEvent](events); n != 1 {
					t.Errorf("restarts = %d, want 1", n)
				}
			},
		},
		{name: "Last-Modified only", opts: []ferrytest.Option{ferrytest.LastModifiedOnly(), ferrytest.DropAfter(300<<10, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proto(t, func(t *testing.T, h2 bool) {
				opts := append([]ferrytest.Option{ferrytest.Size(size)}, tt.opts...)
				srv := newServer(t, h2, opts...)
				cfg := testConfig(h2)
				if tt.cfg != nil {
					tt.cfg(&cfg)
				}
				s := mustSession(t, cfg)
				dir := t.TempDir()
				dest := filepath.Join(dir, "out.bin")
				res, events, err := download(t, s, ferry.DownloadRequest{URL: srv.URL + "/file", Path: dest, SHA256: true})
				if tt.wantErr != nil {
					if err == nil || !tt.wantErr(err) {
						t.Fatalf("err = %v (%T), want the typed error of this fault", err, err)
					}
					if _, statErr := os.Stat(dest); statErr == nil {
						t.Fatal("a failed download left a file under the final name")
					}
					return
				}
				if err != nil {
					t.Fatalf("download failed: %v", err)
				}
				if got := ferrytest.FileSHA256(t, dest); got != srv.SHA256() || res.SHA256 != got {
					t.Fatalf("sha-256 of the file %s, reported %s, want %s", got, res.SHA256, srv.SHA256())
				}
				if _, ok := events[len(events)-1].(ferry.DoneEvent); !ok {
					t.Errorf("last event is %T, want DoneEvent", events[len(events)-1])
				}
				assertNoLeftovers(t, dir, "out.bin")
				if tt.check != nil {
					tt.check(t, res, events)
				}
			})
		})
	}
}
