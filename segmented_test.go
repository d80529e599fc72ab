package ferry_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

const segSize = 8 << 20

func rangedGETs(srv *ferrytest.Server) (n int) {
	for _, r := range srv.Requests() {
		if r.Method == "GET" && r.Range != "" && r.Status == http.StatusPartialContent {
			n++
		}
	}
	return n
}

// together holds the first n ranged GETs until all n are in flight, so
// that the workers' first requests overlap (and take n connections over
// HTTP/1.1) however the machine schedules them.
func together(n int) ferrytest.Option {
	var arrived atomic.Int32
	all := make(chan struct{})
	return wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.Method == "GET" && r.Header.Get("Range") != "" {
			switch k := arrived.Add(1); {
			case k == int32(n):
				close(all)
			case k < int32(n):
				select {
				case <-all:
				case <-r.Context().Done():
					return
				case <-time.After(time.Minute): // the workers do not overlap: the test fails below
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func TestSegmentedDownload(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		srv := newServer(t, h2, ferrytest.Size(segSize), together(4))
		res, _, err := download(t, mustSession(t, testConfig(h2)),
			ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o"), SHA256: true, Connections: 4})
		if err != nil {
			t.Fatal(err)
		}
		if res.SHA256 != srv.SHA256() || res.Downloaded != segSize {
			t.Fatalf("sha %s downloaded %d; want %s and exactly %d", res.SHA256, res.Downloaded, srv.SHA256(), segSize)
		}
		if n := rangedGETs(srv); n < 4 {
			t.Errorf("%d ranged GETs, want at least one per connection", n)
		}
		if !h2 && res.Metrics.Connections < 4 {
			t.Errorf("%d connections over HTTP/1.1, want 4", res.Metrics.Connections)
		}
	})
}

// Every misbehaviour of a segmented origin ends in the right file or a typed
// error, over HTTP/1.1 and HTTP/2.
func TestSegmentedFaults(t *testing.T) {
	// answer200 makes the nth ranged GET a full 200, as if the server
	// stopped honouring ranges for one segment.
	answer200 := func(nth int32) ferrytest.Option {
		var seen atomic.Int32
		return wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.Method == "GET" && r.Header.Get("Range") != "" && seen.Add(1) == nth {
				r.Header.Del("Range")
			}
			next.ServeHTTP(w, r)
		})
	}
	tests := []struct {
		name     string
		opts     []ferrytest.Option
		fresh    func() ferrytest.Option // a stateful option, made anew per server
		checksum func(*ferrytest.Server) string
		wantErr  func(error) bool
		check    func(t *testing.T, srv *ferrytest.Server, res *ferry.Result, events []ferry.Event)
	}{
		{
			name: "connection cut mid-segment",
			opts: []ferrytest.Option{ferrytest.DropAfter(300<<10, 3)},
			check: func(t *testing.T, srv *ferrytest.Server, res *ferry.Result, events []ferry.Event) {
				if res.Downloaded != segSize {
					t.Errorf("downloaded %d, want exactly %d: nothing fetched twice", res.Downloaded, segSize)
				}
				if n := count[ferry.RetryEvent](events); n != 3 {
					t.Errorf("retries = %d, want 3", n)
				}
			},
		},
		{name: "one segment answered 200", fresh: func() ferrytest.Option { return answer200(3) }, check: restarted},
		{name: "wrong Content-Range twice", opts: []ferrytest.Option{ferrytest.WrongContentRange(2)}},
		{name: "wrong Content-Range always", opts: []ferrytest.Option{ferrytest.WrongContentRange(1 << 20)}, check: restarted},
		{name: "gzip on ranged responses", opts: []ferrytest.Option{ferrytest.GzipRanged()}, check: restarted},
		{
			name: "ETag changes mid-download",
			opts: []ferrytest.Option{ferrytest.ChangeETagAfter(3), ferrytest.ChangedSize(segSize + 4321)},
			check: func(t *testing.T, srv *ferrytest.Server, res *ferry.Result, events []ferry.Event) {
				if res.Size != segSize+4321 || count[ferry.RestartEvent](events) < 1 {
					t.Errorf("size %d restarts %d; want the new version and a restart", res.Size, count[ferry.RestartEvent](events))
				}
			},
		},
		{name: "503 on some segments", opts: []ferrytest.Option{ferrytest.Status(503, 3)}},
		{
			name:     "digest mismatch",
			checksum: func(*ferrytest.Server) string { return "sha-256=" + zeroDigest },
			wantErr:  func(err error) bool { _, ok := errors.AsType[*ferry.IntegrityError](err); return ok },
		},
		{
			name:     "right digest",
			checksum: func(srv *ferrytest.Server) string { return "sha-256=" + srv.SHA256() },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proto(t, func(t *testing.T, h2 bool) {
				opts := append([]ferrytest.Option{ferrytest.Size(segSize)}, tt.opts...)
				if tt.fresh != nil {
					opts = append(opts, tt.fresh())
				}
				srv := newServer(t, h2, opts...)
				dir := t.TempDir()
				req := ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(dir, "o"), SHA256: true, Connections: 4}
				if tt.checksum != nil {
					req.Checksum = tt.checksum(srv)
				}
				res, events, err := download(t, mustSession(t, testConfig(h2)), req)
				if tt.wantErr != nil {
					if err == nil || !tt.wantErr(err) {
						t.Fatalf("err = %v, want the typed error", err)
					}
					if entries, _ := os.ReadDir(dir); len(entries) != 0 {
						t.Fatalf("a failed download left %d files", len(entries))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := ferrytest.FileSHA256(t, req.Path); got != srv.SHA256() || res.SHA256 != got {
					t.Fatalf("file sha %s reported %s, want %s", got, res.SHA256, srv.SHA256())
				}
				assertNoLeftovers(t, dir, "o")
				if tt.check != nil {
					tt.check(t, srv, res, events)
				}
			})
		})
	}
}

// restarted checks that the download fell back to starting over.
func restarted(t *testing.T, srv *ferrytest.Server, res *ferry.Result, events []ferry.Event) {
	if count[ferry.RestartEvent](events) < 1 || res.Metrics.Restarts < 1 {
		t.Errorf("no restart; the fault was not met")
	}
}

const zeroDigest = "0000000000000000000000000000000000000000000000000000000000000000"

// An interrupted segmented download continues from its control file, with
// the same or a different number of connections.
func TestSegmentedResume(t *testing.T) {
	for _, again := range []int{4, 1} {
		t.Run(map[int]string{4: "same connections", 1: "single stream"}[again], func(t *testing.T) {
			srv := newServer(t, false, ferrytest.Size(segSize), ferrytest.Throttle(4<<20))
			dest := filepath.Join(t.TempDir(), "o")
			req := ferry.DownloadRequest{URL: srv.URL + "/f", Path: dest, SHA256: true, Connections: 4}
			ctx, cancel := context.WithCancel(context.Background())
			task, err := mustSession(t, testConfig(false)).Download(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			waitProgress(t, task, 3<<20)
			cancel()
			<-task.Done()
			first := task.Progress().Done

			req.Connections = again
			res, _, err := download(t, mustSession(t, testConfig(false)), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.SHA256 != srv.SHA256() {
				t.Fatalf("sha %s, want %s", res.SHA256, srv.SHA256())
			}
			if res.ResumedFrom < 2<<20 || res.ResumedFrom > first {
				t.Fatalf("resumed from %d; the first run had %d in place", res.ResumedFrom, first)
			}
			// What the checkpoint missed is fetched again: at most a
			// second of transfer per connection (4 MiB/s each here).
			if extra := first - res.ResumedFrom; extra > 4*(4<<20) {
				t.Errorf("%d bytes fetched twice, more than a checkpoint window per connection", extra)
			}
			if res.Downloaded != segSize-res.ResumedFrom {
				t.Errorf("downloaded %d, want the missing %d", res.Downloaded, segSize-res.ResumedFrom)
			}
		})
	}
}

// The adaptive default adds connections while the total rate rises: against
// an origin that caps each connection, it goes past its start of two.
func TestAdaptiveConnections(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(16<<20), ferrytest.Throttle(2<<20))
	res, _, err := download(t, mustSession(t, testConfig(false)),
		ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o"), SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != srv.SHA256() {
		t.Fatal("wrong sha")
	}
	if res.Metrics.Connections <= 2 {
		t.Errorf("used %d connections against a per-connection cap; want more than the initial 2", res.Metrics.Connections)
	}
}

// The per-host cap bounds requests in flight across tasks, which over
// HTTP/2 are streams on one connection.
func TestPerHostCapBoundsStreams(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		var inFlight, peak atomic.Int32
		srv := newServer(t, h2, ferrytest.Size(segSize), ferrytest.Throttle(16<<20),
			wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				n := inFlight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				defer inFlight.Add(-1)
				next.ServeHTTP(w, r)
			}))
		cfg := testConfig(h2)
		cfg.MaxConnsPerHost = 3
		s := mustSession(t, cfg)
		dir := t.TempDir()
		var tasks []*ferry.Task
		for _, name := range []string{"a", "b"} {
			task, err := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/" + name, Path: filepath.Join(dir, name), Connections: 4})
			if err != nil {
				t.Fatal(err)
			}
			tasks = append(tasks, task)
		}
		for _, task := range tasks {
			if _, err := task.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if p := peak.Load(); p > 3 || p < 2 {
			t.Fatalf("peak requests in flight %d, want at most the cap of 3 (and more than 1)", p)
		}
	})
}
