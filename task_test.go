package ferry_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// waitDone reads events until progress passes n bytes, then returns.
func waitProgress(t *testing.T, task *ferry.Task, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for task.Progress().Done < n {
		if time.Now().After(deadline) {
			t.Fatalf("no progress past %d bytes (at %d, state %v, err %v)", n, task.Progress().Done, task.State(), task.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCancelWithResumeDataAcrossSessions(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		srv := newServer(t, h2, ferrytest.Size(4<<20), ferrytest.Throttle(8<<20))
		dest := filepath.Join(t.TempDir(), "out.bin")
		cfg := testConfig(h2)
		cfg.Ephemeral = true
		a := mustSession(t, cfg)
		task, err := a.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/file", Path: dest})
		if err != nil {
			t.Fatal(err)
		}
		waitProgress(t, task, 1<<20)
		rd, err := task.CancelWithResumeData()
		if err != nil {
			t.Fatalf("CancelWithResumeData: %v", err)
		}
		if task.State() != ferry.StateCompleted || !errors.Is(task.Err(), ferry.ErrCanceled) {
			t.Fatalf("after cancel: state %v, err %v", task.State(), task.Err())
		}
		blob, err := rd.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(dest + ".part"); err != nil {
			t.Fatalf("cancel with resume data must keep the .part file: %v", err)
		}

		// A new session, as another process would make it.
		var again ferry.ResumeData
		if err := again.UnmarshalBinary(blob); err != nil {
			t.Fatal(err)
		}
		b := mustSession(t, cfg)
		res, _, err := download(t, b, ferry.DownloadRequest{ResumeData: &again, SHA256: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.ResumedFrom < 1<<20 || res.ResumedFrom != rd.Offset() {
			t.Errorf("resumed from %d, want the %d bytes kept", res.ResumedFrom, rd.Offset())
		}
		if res.Downloaded != srv.Size()-res.ResumedFrom {
			t.Errorf("downloaded %d, want only the missing %d", res.Downloaded, srv.Size()-res.ResumedFrom)
		}
		if res.SHA256 != srv.SHA256() {
			t.Errorf("sha-256 %s, want %s", res.SHA256, srv.SHA256())
		}
	})
}

func TestResumeDataRejectsGarbage(t *testing.T) {
	var rd ferry.ResumeData
	for _, b := range []string{"", "{}", `{"version":9,"kind":"download","url":"http://x","path":"p"}`, "not json"} {
		if err := rd.UnmarshalBinary([]byte(b)); !errors.Is(err, ferry.ErrInvalidRequest) {
			t.Errorf("UnmarshalBinary(%q) = %v, want ErrInvalidRequest", b, err)
		}
	}
}

func TestSuspendResume(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(4<<20), ferrytest.Throttle(8<<20))
	dest := filepath.Join(t.TempDir(), "out.bin")
	s := mustSession(t, testConfig(false))
	task, err := s.NewDownload(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/file", Path: dest, SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if task.State() != ferry.StateSuspended {
		t.Fatalf("new task state %v, want suspended", task.State())
	}
	if err := task.Start(); err != nil {
		t.Fatal(err)
	}
	waitProgress(t, task, 1<<20)
	task.Suspend()
	if task.State() != ferry.StateSuspended {
		t.Fatalf("state after Suspend = %v", task.State())
	}
	held := task.Progress().Done
	time.Sleep(100 * time.Millisecond)
	if task.Progress().Done != held {
		t.Fatal("a suspended task kept downloading")
	}
	if err := task.Resume(); err != nil {
		t.Fatal(err)
	}
	res, err := task.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != srv.SHA256() || res.Downloaded != srv.Size() {
		t.Errorf("sha %s downloaded %d; want %s and %d (nothing fetched twice)", res.SHA256, res.Downloaded, srv.SHA256(), srv.Size())
	}
	if err := task.Resume(); !errors.Is(err, ferry.ErrTaskCompleted) {
		t.Errorf("Resume of a completed task = %v, want ErrTaskCompleted", err)
	}
}

func TestCancelDeletesFiles(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(4<<20), ferrytest.Throttle(8<<20))
	dir := t.TempDir()
	s := mustSession(t, testConfig(false))
	task, err := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/file", Path: filepath.Join(dir, "out.bin")})
	if err != nil {
		t.Fatal(err)
	}
	waitProgress(t, task, 512<<10)
	task.Cancel()
	<-task.Done()
	if !errors.Is(task.Err(), ferry.ErrCanceled) {
		t.Fatalf("err = %v, want ErrCanceled", task.Err())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("cancel left %d files behind", len(entries))
	}
}

// A context cancelled mid-download (a killed CLI, Ctrl-C) keeps the .part and
// control file, and the same request in a new session continues.
func TestControlFileResume(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(4<<20), ferrytest.Throttle(8<<20))
	dest := filepath.Join(t.TempDir(), "out.bin")
	req := ferry.DownloadRequest{URL: srv.URL + "/file", Path: dest, SHA256: true}
	ctx, cancel := context.WithCancel(context.Background())
	task, err := mustSession(t, testConfig(false)).Download(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	waitProgress(t, task, 1<<20)
	cancel()
	if _, err := task.Wait(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	for _, f := range []string{dest + ".part", dest + ".ferry"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("interrupted download must leave %s: %v", filepath.Base(f), err)
		}
	}
	res, _, err := download(t, mustSession(t, testConfig(false)), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom < 1<<20 || res.SHA256 != srv.SHA256() {
		t.Fatalf("resumed from %d with sha %s; want >= 1 MiB and %s", res.ResumedFrom, res.SHA256, srv.SHA256())
	}
	// The If-Range of the resume carried the strong ETag.
	var sawIfRange bool
	for _, r := range srv.Requests() {
		if r.Range != "" && r.IfRange == srv.ETag() {
			sawIfRange = true
		}
	}
	if !sawIfRange {
		t.Error("no ranged request carried If-Range with the ETag")
	}
}

func TestContinueForeignFile(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(1<<20))
	dest := filepath.Join(t.TempDir(), "out.bin")
	prefix := make([]byte, 300<<10)
	if _, err := srv.Content(1).ReadAt(prefix, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest, prefix, 0o644); err != nil {
		t.Fatal(err)
	}
	res, _, err := download(t, mustSession(t, testConfig(false)), ferry.DownloadRequest{URL: srv.URL + "/file", Path: dest, Continue: true, SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != int64(len(prefix)) || res.SHA256 != srv.SHA256() {
		t.Fatalf("resumed from %d sha %s; want %d and %s", res.ResumedFrom, res.SHA256, len(prefix), srv.SHA256())
	}
}

func TestChecksum(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(256<<10))
	dir := t.TempDir()
	s := mustSession(t, testConfig(false))
	if _, _, err := download(t, s, ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(dir, "ok"), Checksum: "sha-256=" + srv.SHA256()}); err != nil {
		t.Fatalf("right checksum: %v", err)
	}
	bad := "sha-256=" + "00000000000000000000000000000000000000000000000000000000000000ff"
	_, _, err := download(t, s, ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(dir, "bad"), Checksum: bad})
	if _, ok := errors.AsType[*ferry.IntegrityError](err); !ok {
		t.Fatalf("wrong checksum: err = %v, want *IntegrityError", err)
	}
	assertNoLeftovers(t, dir, "ok")
	if _, err := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL, Path: "x", Checksum: "md5=00"}); !errors.Is(err, ferry.ErrInvalidRequest) {
		t.Errorf("bad checksum syntax: %v, want ErrInvalidRequest", err)
	}
}

func TestResourceTimeout(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(1<<20), ferrytest.Throttle(64<<10))
	cfg := testConfig(false)
	cfg.ResourceTimeout = 300 * time.Millisecond
	dest := filepath.Join(t.TempDir(), "out.bin")
	_, _, err := download(t, mustSession(t, cfg), ferry.DownloadRequest{URL: srv.URL + "/file", Path: dest})
	if !errors.Is(err, ferry.ErrResourceTimeout) {
		t.Fatalf("err = %v, want ErrResourceTimeout", err)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Fatal("timed-out download left a final file")
	}
}

func TestEventsAndMetrics(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		srv := newServer(t, h2, ferrytest.Size(512<<10), ferrytest.Redirect(2))
		res, events, err := download(t, mustSession(t, testConfig(h2)),
			ferry.DownloadRequest{URL: srv.URL + "/redirect/2", Path: filepath.Join(t.TempDir(), "o")})
		if err != nil {
			t.Fatal(err)
		}
		// The HEAD probe and the GET follow the same two hops: the task
		// followed two redirects, as curl's num_redirects counts them.
		if n := count[ferry.RedirectEvent](events); n != 2 {
			t.Errorf("redirect events = %d, want 2", n)
		}
		if count[ferry.ResponseEvent](events) != 1 || count[ferry.DoneEvent](events) != 1 {
			t.Errorf("want one response and one done event, got %d and %d", count[ferry.ResponseEvent](events), count[ferry.DoneEvent](events))
		}
		m := res.Metrics
		// Each hop is a transaction of its own: HEAD 3xx, 3xx, 200, then
		// the same for the GET.
		if m.Redirects != 2 || len(m.Transactions) != 6 || m.Connections < 1 {
			t.Fatalf("metrics: %d redirects, %d transactions, %d connections", m.Redirects, len(m.Transactions), m.Connections)
		}
		for i, tx := range m.Transactions {
			method, redirect := "HEAD", i%3 < 2
			if i >= 3 {
				method = "GET"
			}
			if tx.Method != method || (tx.StatusCode/100 == 3) != redirect || tx.End.IsZero() {
				t.Errorf("transaction %d = %s %s %d, want a %s, redirect %v", i, tx.Method, tx.URL, tx.StatusCode, method, redirect)
			}
		}
		wantProto := "HTTP/1.1"
		if h2 {
			wantProto = "HTTP/2.0"
		}
		get := m.Transactions[5]
		if get.Method != "GET" || get.StatusCode != 200 || get.Proto != wantProto || get.ResponseBodyBytes != 512<<10 {
			t.Errorf("GET transaction = %+v", get)
		}
		if get.FirstByte.Before(get.Start) || get.End.Before(get.FirstByte) || get.RequestHeaderBytes == 0 || get.ResponseHeaderBytes == 0 {
			t.Errorf("GET timings/sizes out of order: %+v", get)
		}
		if head := m.Transactions[0]; head.ConnectDone.IsZero() {
			t.Errorf("first transaction should dial: %+v", head)
		}
		if !get.ReusedConn {
			t.Errorf("the GET should reuse the probe's connection")
		}
		if m.End.Before(m.Start) || m.Duration() <= 0 {
			t.Errorf("task interval %v..%v", m.Start, m.End)
		}
	})
}

func TestSessionCloseCancelsAndShutdownWaits(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(2<<20), ferrytest.Throttle(4<<20))
	dir := t.TempDir()
	s, _ := ferry.NewSession(testConfig(false))
	slow, _ := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/a", Path: filepath.Join(dir, "a")})
	idle, _ := s.NewDownload(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/b", Path: filepath.Join(dir, "b")})
	if len(s.Tasks()) != 2 || s.Task(slow.ID()) != slow {
		t.Fatal("Tasks/Task do not list what was created")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if slow.Err() != nil {
		t.Errorf("Shutdown should let the running task finish: %v", slow.Err())
	}
	if !errors.Is(idle.Err(), ferry.ErrCanceled) {
		t.Errorf("Shutdown should cancel a never-started task: %v", idle.Err())
	}
	if _, err := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL, Path: filepath.Join(dir, "c")}); !errors.Is(err, ferry.ErrSessionClosed) {
		t.Errorf("Download on a closed session = %v", err)
	}

	s2, _ := ferry.NewSession(testConfig(false))
	task, _ := s2.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/d", Path: filepath.Join(dir, "d")})
	waitProgress(t, task, 1)
	s2.Close()
	if !errors.Is(task.Err(), ferry.ErrCanceled) {
		t.Errorf("Close should cancel running tasks: %v", task.Err())
	}
}

func TestRateLimitSharedBySession(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(512<<10))
	cfg := testConfig(false)
	cfg.RateLimit = 1 << 20 // two 512 KiB downloads share 1 MiB/s: about 1s
	s := mustSession(t, cfg)
	dir := t.TempDir()
	start := time.Now()
	a, _ := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/a", Path: filepath.Join(dir, "a")})
	b, _ := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/b", Path: filepath.Join(dir, "b")})
	for _, task := range []*ferry.Task{a, b} {
		if _, err := task.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// A lower bound only: the budget cannot be beaten, whatever the machine.
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Fatalf("1 MiB at 1 MiB/s took %v: the limit is not shared", d)
	}
}

func TestInvalidRequests(t *testing.T) {
	s := mustSession(t, testConfig(false))
	for _, req := range []ferry.DownloadRequest{
		{URL: "ftp://x/y", Path: "p"},
		{URL: "http://", Path: "p"},
		{URL: "http://host/x"},
	} {
		if _, err := s.Download(context.Background(), req); !errors.Is(err, ferry.ErrInvalidRequest) {
			t.Errorf("Download(%+v) = %v, want ErrInvalidRequest", req, err)
		}
	}
}

func TestRedirectPolicy(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(64<<10), ferrytest.Redirect(3))
	stop := errors.New("no redirects to there")
	cfg := testConfig(false)
	cfg.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 2 {
			return stop
		}
		return nil
	}
	dest := filepath.Join(t.TempDir(), "o")
	_, events, err := download(t, mustSession(t, cfg), ferry.DownloadRequest{URL: srv.URL + "/redirect/3", Path: dest})
	if !errors.Is(err, stop) {
		t.Fatalf("err = %v, want the policy's error", err)
	}
	if n := count[ferry.RetryEvent](events); n != 0 {
		t.Errorf("a refused redirect was retried %d times", n)
	}
	if n := count[ferry.RedirectEvent](events); n != 1 {
		t.Errorf("redirect events = %d, want the 1 allowed", n)
	}
}

// Ranged requests never ask for an encoding, even when the caller's headers do.
func TestRangedRequestsHaveNoAcceptEncoding(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(1<<20), ferrytest.DropAfter(100<<10, 1))
	cfg := testConfig(false)
	cfg.Header = http.Header{"Accept-Encoding": {"gzip"}}
	if _, _, err := download(t, mustSession(t, cfg), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o")}); err != nil {
		t.Fatal(err)
	}
	ranged := 0
	for _, r := range srv.Requests() {
		if r.Range != "" && r.Method == "GET" {
			ranged++
			if r.AcceptEncoding != "" {
				t.Errorf("ranged request sent Accept-Encoding %q", r.AcceptEncoding)
			}
		}
	}
	if ranged == 0 {
		t.Fatal("no ranged request was made")
	}
}

func TestDownloadOverTLSHTTP2(t *testing.T) {
	srv := ferrytest.NewServer(t, ferrytest.TLS(), ferrytest.Size(1<<20), ferrytest.DropAfter(200<<10, 1))
	cfg := testConfig(false)
	cfg.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	res, _, err := download(t, mustSession(t, cfg), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "o"), SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != srv.SHA256() || res.Proto != "HTTP/2.0" {
		t.Fatalf("sha %s over %s; want %s over HTTP/2.0", res.SHA256, res.Proto, srv.SHA256())
	}
	var tlsSeen bool
	for _, tx := range res.Metrics.Transactions {
		if !tx.TLSDone.IsZero() {
			tlsSeen = true
		}
		// Every transaction says what its connection negotiated, a
		// reused one too.
		if tx.TLSVersion != "TLS 1.3" || !strings.HasPrefix(tx.TLSCipherSuite, "TLS_") {
			t.Errorf("transaction over %q with %q, want TLS 1.3 and its suite", tx.TLSVersion, tx.TLSCipherSuite)
		}
	}
	if !tlsSeen {
		t.Error("no transaction recorded a TLS handshake")
	}
}
