package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/bgapi"
)

// testDaemon runs a daemon in this process until the test ends (or stop).
type testDaemon struct {
	c     *bgapi.Client
	state string
	sock  string
	stop  func()
}

func startDaemon(t *testing.T, state string, tweak func(*Config)) *testDaemon {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "fd") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cfg := Config{StateDir: state, Socket: filepath.Join(sockDir, "d.sock"), RetryWait: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Session = ferry.DefaultConfig()
	cfg.Session.Retry = ferry.RetryPolicy{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, MaxAttempts: 3}
	if tweak != nil {
		tweak(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	c := bgapi.NewClient(cfg.Socket)
	t.Cleanup(c.Close)
	if err := c.WaitReady(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return &testDaemon{c: c, state: state, sock: cfg.Socket, stop: stop}
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// collect reads the session's kept events.
func collect(t *testing.T, c *bgapi.Client, session string, after uint64) []bgapi.Event {
	t.Helper()
	var evs []bgapi.Event
	err := c.Events(context.Background(), session, bgapi.EventsOptions{After: after}, func(e bgapi.Event) error {
		evs = append(evs, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestDownloadsAndEvents(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	ctx := context.Background()
	out := t.TempDir()
	var ids []string
	var sums []string
	for i := range 3 {
		srv := ferrytest.NewServer(t, ferrytest.Size(int64(256<<10+i)))
		tk, err := d.c.Create(ctx, "app", bgapi.NewTask{Get: &bgapi.GetRequest{URL: srv.URL + "/file", Path: filepath.Join(out, string(rune('a'+i)))}})
		if err != nil {
			t.Fatal(err)
		}
		ids, sums = append(ids, tk.ID), append(sums, srv.SHA256())
	}
	for i, id := range ids {
		tk, err := d.c.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.State != bgapi.Done || tk.Result == nil || tk.Result.SHA256 != sums[i] {
			t.Fatalf("task %s: %+v", id, tk)
		}
		if got := fileSHA(t, tk.Result.Path); got != sums[i] {
			t.Fatalf("file %s: sha %s", tk.Result.Path, got)
		}
	}
	evs := collect(t, d.c, "app", 0)
	count := map[string]int{}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		count[e.Type]++
	}
	if count["created"] != 3 || count["started"] != 3 || count["done"] != 3 || len(evs) != 9 {
		t.Fatalf("events %v", count)
	}
	if err := d.c.Ack(ctx, "app", evs[len(evs)-1].Seq); err != nil {
		t.Fatal(err)
	}
	if left := collect(t, d.c, "app", 0); len(left) != 0 {
		t.Fatalf("%d events after the ack", len(left))
	}
	// Another session sees none of it.
	if other := collect(t, d.c, "other", 0); len(other) != 0 {
		t.Fatalf("another session got %d events", len(other))
	}
}

// While one client holds a session, a second one is refused with the
// documented error; once the first lets go, the session is free again.
func TestAttachOnce(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan struct{})
	go func() {
		d.c.Events(ctx, "uploader", bgapi.EventsOptions{Follow: true, Attach: true}, func(bgapi.Event) error { return nil })
		close(held)
	}()
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		err = d.c.Events(context.Background(), "uploader", bgapi.EventsOptions{Attach: true}, func(bgapi.Event) error { return nil })
		if err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, bgapi.ErrSessionInUse) {
		t.Fatalf("second attach: %v, want ErrSessionInUse", err)
	}
	if err := d.c.Events(context.Background(), "downloader", bgapi.EventsOptions{Attach: true}, func(bgapi.Event) error { return nil }); err != nil {
		t.Fatalf("another session: %v", err)
	}
	cancel()
	<-held
	for i := 0; ; i++ {
		err := d.c.Events(context.Background(), "uploader", bgapi.EventsOptions{Attach: true}, func(bgapi.Event) error { return nil })
		if err == nil {
			break
		}
		if i == 100 {
			t.Fatalf("the session stayed held after its client left: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPauseResumeCancel(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	ctx := context.Background()
	srv := ferrytest.NewServer(t, ferrytest.Size(4<<20), ferrytest.Throttle(1<<20))
	path := filepath.Join(t.TempDir(), "slow.bin")
	tk, err := d.c.Create(ctx, "s", bgapi.NewTask{Get: &bgapi.GetRequest{URL: srv.URL + "/file", Path: path}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, d.c, tk.ID, bgapi.Running)
	if tk, err = d.c.Pause(ctx, tk.ID); err != nil || tk.State != bgapi.Paused {
		t.Fatalf("pause: %+v %v", tk, err)
	}
	if _, err := os.Stat(path + ".part"); err != nil {
		t.Errorf("a paused download should keep its part file: %v", err)
	}
	if tk, err = d.c.Resume(ctx, tk.ID); err != nil || (tk.State != bgapi.Queued && tk.State != bgapi.Running) {
		t.Fatalf("resume: %+v %v", tk, err)
	}
	waitState(t, d.c, tk.ID, bgapi.Running)
	if tk, err = d.c.Cancel(ctx, tk.ID); err != nil || tk.State != bgapi.Canceled {
		t.Fatalf("cancel: %+v %v", tk, err)
	}
	if _, err := os.Stat(path + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cancelled download left its part file: %v", err)
	}
	if _, err := d.c.Resume(ctx, tk.ID); err == nil {
		t.Error("a cancelled task resumed")
	}
	if _, err := d.c.Pause(ctx, "t999"); !errors.Is(err, bgapi.ErrNotFound) {
		t.Errorf("unknown task: %v", err)
	}
	var types []string
	for _, e := range collect(t, d.c, "s", 0) {
		types = append(types, e.Type)
	}
	want := []string{"created", "started", "paused", "resumed", "started", "canceled"}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
	}
}

func waitState(t *testing.T, c *bgapi.Client, id, state string) {
	t.Helper()
	for range 1000 {
		tk, err := c.Task(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.State == state {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("task %s never reached %s", id, state)
}

// A task whose host cannot be reached waits and tries again instead of
// failing, and completes once the host is there.
func TestWaitsForConnectivity(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there for now
	path := filepath.Join(t.TempDir(), "later.bin")
	tk, err := d.c.Create(context.Background(), "s", bgapi.NewTask{Get: &bgapi.GetRequest{URL: "http://" + addr + "/f", Path: path}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, d.c, tk.ID, bgapi.Waiting)
	content := []byte("worth the wait")
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(content) })}
	go srv.Serve(ln)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tk, err = d.c.Wait(ctx, tk.ID)
	if err != nil || tk.State != bgapi.Done {
		t.Fatalf("%+v %v", tk, err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(content) {
		t.Fatalf("got %q", b)
	}
	waiting := 0
	for _, e := range collect(t, d.c, "s", 0) {
		if e.Type == "waiting" {
			waiting++
		}
	}
	if waiting == 0 {
		t.Error("no waiting event")
	}
}

// A daemon stopped mid-transfer continues the transfer when it starts
// again; the completion is reported once.
func TestRestartContinues(t *testing.T) {
	state := t.TempDir()
	d := startDaemon(t, state, nil)
	srv := ferrytest.NewServer(t, ferrytest.Size(3<<20), ferrytest.Throttle(2<<20))
	path := filepath.Join(t.TempDir(), "r.bin")
	tk, err := d.c.Create(context.Background(), "s", bgapi.NewTask{Get: &bgapi.GetRequest{URL: srv.URL + "/file", Path: path}})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, d.c, tk.ID, bgapi.Running)
	time.Sleep(300 * time.Millisecond)
	d.stop()
	d2 := startDaemon(t, state, nil)
	got, err := d2.c.Wait(context.Background(), tk.ID)
	if err != nil || got.State != bgapi.Done || fileSHA(t, path) != srv.SHA256() {
		t.Fatalf("%+v %v", got, err)
	}
	done := 0
	for _, e := range collect(t, d2.c, "s", 0) {
		if e.Type == "done" {
			done++
		}
	}
	if done != 1 {
		t.Fatalf("%d done events", done)
	}
}

// Only one daemon serves a state directory.
func TestOneDaemonPerState(t *testing.T) {
	state := t.TempDir()
	startDaemon(t, state, nil)
	err := Run(context.Background(), Config{StateDir: state, Socket: filepath.Join(t.TempDir(), "x.sock"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, ErrRunning) {
		t.Fatalf("second daemon: %v, want ErrRunning", err)
	}
}
