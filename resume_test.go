package ferry_test

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// wrap returns a ferrytest option that rewrites requests or responses.
func wrap(f func(w http.ResponseWriter, r *http.Request, next http.Handler)) ferrytest.Option {
	return ferrytest.Handler(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(w, r, next) })
	})
}

// A server that ignores If-Range and replaced the resource: its 206 says,
// through its ETag, that it is another version, which must not be spliced.
func TestIgnoredIfRangeNeverSplices(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		srv := newServer(t, h2, ferrytest.Size(1<<20), ferrytest.ChangeETagAfter(1), ferrytest.DropAfter(300<<10, 1),
			wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				r.Header.Del("If-Range")
				next.ServeHTTP(w, r)
			}))
		res, _, err := download(t, mustSession(t, testConfig(h2)), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o"), SHA256: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.SHA256 != srv.SHA256() {
			t.Fatalf("sha %s, want the new version's %s: versions were spliced", res.SHA256, srv.SHA256())
		}
	})
}

// Without validators nothing proves a range belongs to the bytes held, so a
// retry within one run starts over instead of sending a bare Range.
func TestNoValidatorsNeverSplices(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(1<<20), ferrytest.NoValidators(), ferrytest.ChangeETagAfter(1), ferrytest.DropAfter(300<<10, 1))
	res, _, err := download(t, mustSession(t, testConfig(false)), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o"), SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != srv.SHA256() {
		t.Fatalf("sha %s, want %s", res.SHA256, srv.SHA256())
	}
	for _, r := range srv.Requests() {
		if r.Range != "" && r.Method == "GET" {
			t.Errorf("sent Range %q with no validator to protect it", r.Range)
		}
	}
}

// A 416 claiming the resource is exactly the bytes held, while the size is
// known to be larger, is a changed resource, not a complete download.
func TestLying416NeverCommitsATruncatedFile(t *testing.T) {
	const size, cut = 1 << 20, 300 << 10
	var once sync.Once
	srv := newServer(t, false, ferrytest.Size(size), ferrytest.DropAfter(cut, 1),
		wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			lied := false
			if r.Header.Get("Range") != "" && r.Method == "GET" {
				once.Do(func() {
					w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", cut))
					w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
					lied = true
				})
			}
			if !lied {
				next.ServeHTTP(w, r)
			}
		}))
	dest := filepath.Join(t.TempDir(), "o")
	res, _, err := download(t, mustSession(t, testConfig(false)), ferry.DownloadRequest{URL: srv.URL + "/f", Path: dest, SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != size || res.SHA256 != srv.SHA256() {
		t.Fatalf("committed %d bytes with sha %s; want %d and %s", res.Size, res.SHA256, size, srv.SHA256())
	}
}

// A HEAD without Content-Length does not make the bytes held look stale.
func TestHeadWithoutLengthStillResumes(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(1<<20), ferrytest.DropAfter(300<<10, 1),
		wrap(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.Method == http.MethodHead {
				w = &dropLength{ResponseWriter: w}
			}
			next.ServeHTTP(w, r)
		}))
	res, events, err := download(t, mustSession(t, testConfig(false)), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o"), SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := count[ferry.RestartEvent](events); n != 0 || res.SHA256 != srv.SHA256() {
		t.Fatalf("restarts %d, sha %s; want 0 and %s", n, res.SHA256, srv.SHA256())
	}
}

type dropLength struct{ http.ResponseWriter }

func (d *dropLength) WriteHeader(code int) {
	d.Header().Del("Content-Length")
	d.ResponseWriter.WriteHeader(code)
}

// -c adopts the user's file; if that run fails before it learns anything,
// the next -c run still has the user's bytes.
func TestContinueSurvivesAFailedFirstRun(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(1<<20), ferrytest.RetryAfter(503, "0", 1))
	dest := filepath.Join(t.TempDir(), "o")
	prefix := make([]byte, 500<<10)
	srv.Content(1).ReadAt(prefix, 0)
	os.WriteFile(dest, prefix, 0o644)
	cfg := testConfig(false)
	cfg.Retry.MaxAttempts = -1
	req := ferry.DownloadRequest{URL: srv.URL + "/f", Path: dest, Continue: true, SHA256: true}
	if _, _, err := download(t, mustSession(t, cfg), req); err == nil {
		t.Fatal("first run should fail on the 503")
	}
	res, _, err := download(t, mustSession(t, cfg), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != int64(len(prefix)) || res.SHA256 != srv.SHA256() {
		t.Fatalf("resumed from %d sha %s; want %d and %s", res.ResumedFrom, res.SHA256, len(prefix), srv.SHA256())
	}
}

func TestShutdownKeepsSuspendedTasksFiles(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(4<<20), ferrytest.Throttle(8<<20))
	dest := filepath.Join(t.TempDir(), "o")
	s, _ := ferry.NewSession(testConfig(false))
	task, _ := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/f", Path: dest})
	waitProgress(t, task, 1<<20)
	task.Suspend()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(task.Err(), ferry.ErrCanceled) {
		t.Fatalf("err %v, want ErrCanceled", task.Err())
	}
	for _, f := range []string{dest + ".part", dest + ".ferry"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("Shutdown deleted %s of a suspended task", filepath.Base(f))
		}
	}
}

// Suspend, Resume and Cancel racing each other always end in a completed
// task whose Done is closed.
func TestLifecycleRaces(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(8<<20), ferrytest.Throttle(16<<20))
	s := mustSession(t, testConfig(false))
	dir := t.TempDir()
	for i := range 20 {
		task, _ := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(dir, fmt.Sprint(i))})
		var wg sync.WaitGroup
		wg.Go(func() { task.Suspend() })
		wg.Go(func() { task.Resume() })
		wg.Go(func() { task.Suspend() })
		wg.Go(func() { task.Cancel() })
		wg.Wait()
		select {
		case <-task.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: task stuck in state %v", i, task.State())
		}
		if !errors.Is(task.Err(), ferry.ErrCanceled) && task.Err() != nil {
			t.Fatalf("round %d: err %v", i, task.Err())
		}
	}
}

// A server that makes every attempt start over cannot keep the retry policy
// from running out.
func TestRestartLoopExhaustsRetries(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(1<<20), ferrytest.IgnoreRange(), ferrytest.DropAfter(300<<10, 1000))
	cfg := testConfig(false)
	cfg.Retry.MaxAttempts = 3
	_, _, err := download(t, mustSession(t, cfg), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o")})
	if err == nil {
		t.Fatal("want an error")
	}
	gets := 0
	for _, r := range srv.Requests() {
		if r.Method == "GET" {
			gets++
		}
	}
	if gets > 5 {
		t.Fatalf("%d GETs for a policy of 3 attempts", gets)
	}
}

// Waiting for the bandwidth budget is not a stall.
func TestRateLimitBelowIdleTimeout(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(48<<10))
	cfg := testConfig(false)
	cfg.RateLimit = 32 << 10
	cfg.IdleTimeout = 400 * time.Millisecond
	cfg.Retry.MaxAttempts = -1
	if _, _, err := download(t, mustSession(t, cfg), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o")}); err != nil {
		t.Fatal(err)
	}
}

// The idle timeout covers the probe too: a server that never answers is cut.
func TestProbeIdleTimeout(t *testing.T) {
	srv := newServer(t, false, ferrytest.SlowFirstByte(20*time.Second))
	cfg := testConfig(false)
	cfg.IdleTimeout = 300 * time.Millisecond
	cfg.Retry.MaxAttempts = -1
	_, _, err := download(t, mustSession(t, cfg), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o")})
	if !errors.Is(err, ferry.ErrIdleTimeout) {
		t.Fatalf("err = %v, want ErrIdleTimeout", err)
	}
}

func TestSHA256AndSHA512Checksum(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(300<<10))
	h := sha512.New()
	io.Copy(h, io.NewSectionReader(srv.Content(1), 0, srv.Size()))
	sum := hex.EncodeToString(h.Sum(nil))
	res, _, err := download(t, mustSession(t, testConfig(false)),
		ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o"), SHA256: true, Checksum: "sha-512=" + sum})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != srv.SHA256() {
		t.Fatalf("SHA256 %q, want %s", res.SHA256, srv.SHA256())
	}
}

func TestTwoDownloadsToOneFile(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(2<<20), ferrytest.Throttle(4<<20))
	dest := filepath.Join(t.TempDir(), "o")
	s := mustSession(t, testConfig(false))
	first, _ := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/f", Path: dest})
	waitProgress(t, first, 1)
	_, _, err := download(t, s, ferry.DownloadRequest{URL: srv.URL + "/f", Path: dest})
	if !errors.Is(err, ferry.ErrBusy) {
		t.Fatalf("second download to the same file: %v, want ErrBusy", err)
	}
	if _, err := first.Wait(context.Background()); err != nil {
		t.Fatalf("the first download was disturbed: %v", err)
	}
}

// With KeepState, a finished download run again returns the file in place
// without fetching it (as a daemon killed before recording the result
// does); a changed file is fetched again; ForgetDownload ends the record.
func TestDownloadKeepState(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(1<<20))
	s := mustSession(t, testConfig(false))
	path := filepath.Join(t.TempDir(), "kept.bin")
	req := ferry.DownloadRequest{URL: srv.URL + "/file", Path: path, SHA256: true, KeepState: true}
	first, _, err := download(t, s, req)
	if err != nil {
		t.Fatal(err)
	}
	gets := len(srv.Requests())
	again, _, err := download(t, s, req)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Requests()) - gets; n != 0 || again.Downloaded != 0 || again.SHA256 != first.SHA256 || again.Size != first.Size {
		t.Errorf("run again: %d requests more, %d bytes downloaded, sha %s", n, again.Downloaded, again.SHA256)
	}
	// The file changed under its name: fetched again.
	os.WriteFile(path, []byte("not it"), 0o644)
	third, _, err := download(t, s, req)
	if err != nil || third.SHA256 != first.SHA256 || third.Downloaded != first.Size {
		t.Fatalf("after the file changed: %+v %v", third, err)
	}
	if err := s.ForgetDownload(req); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".ferry"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ForgetDownload left the control file: %v", err)
	}
}
