package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/server"
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
	if err := c.WaitReady(ctx, testTimeout); err != nil {
		t.Fatal(err)
	}
	return &testDaemon{c: c, state: state, sock: cfg.Socket, stop: stop}
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
		if got := ferrytest.FileSHA256(t, tk.Result.Path); got != sums[i] {
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
	held, opened := make(chan struct{}), make(chan struct{})
	go func() {
		d.c.Events(ctx, "uploader", bgapi.EventsOptions{Follow: true, Attach: true, OnOpen: func(string) { close(opened) }},
			func(bgapi.Event) error { return nil })
		close(held)
	}()
	<-opened
	err := d.c.Events(context.Background(), "uploader", bgapi.EventsOptions{Attach: true}, func(bgapi.Event) error { return nil })
	if !errors.Is(err, bgapi.ErrSessionInUse) {
		t.Fatalf("second attach: %v, want ErrSessionInUse", err)
	}
	if err := d.c.Events(context.Background(), "downloader", bgapi.EventsOptions{Attach: true}, func(bgapi.Event) error { return nil }); err != nil {
		t.Fatalf("another session: %v", err)
	}
	cancel()
	<-held
	// The daemon learns that the client left when its stream closes, a
	// moment later: look until then.
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(10 * time.Millisecond) {
		err := d.c.Events(context.Background(), "uploader", bgapi.EventsOptions{Attach: true}, func(bgapi.Event) error { return nil })
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session stayed held after its client left: %v", err)
		}
	}
}

func TestPauseResumeCancel(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	ctx := context.Background()
	// Both GETs send a little and then nothing until the client goes: the
	// download is under way, and unfinished, when it is paused and when
	// it is cancelled, however slow the machine.
	got := make(chan struct{}, 1)
	srv := ferrytest.NewServer(t, ferrytest.Size(4<<20), ferrytest.Stall(64<<10, time.Hour, 2), gets(got))
	path := filepath.Join(t.TempDir(), "slow.bin")
	tk, err := d.c.Create(ctx, "s", bgapi.NewTask{Get: &bgapi.GetRequest{URL: srv.URL + "/file", Path: path, Connections: 1}})
	if err != nil {
		t.Fatal(err)
	}
	await(t, got, "GET of the file")
	if tk, err = d.c.Pause(ctx, tk.ID); err != nil || tk.State != bgapi.Paused {
		t.Fatalf("pause: %+v %v", tk, err)
	}
	if _, err := os.Stat(path + ".part"); err != nil {
		t.Errorf("a paused download should keep its part file: %v", err)
	}
	if tk, err = d.c.Resume(ctx, tk.ID); err != nil || (tk.State != bgapi.Queued && tk.State != bgapi.Running) {
		t.Fatalf("resume: %+v %v", tk, err)
	}
	await(t, got, "GET of the file after the resume")
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

// testTimeout bounds every wait of these tests: far more than anything
// takes on a loaded machine, so that only a hang fails.
const testTimeout = time.Minute

// waitState returns once the task is in state. The session's event stream
// wakes it: every change of state is an event.
func waitState(t *testing.T, c *bgapi.Client, id string, state bgapi.State) {
	t.Helper()
	waitTask(t, c, id, string(state), func(tk *bgapi.Task) bool { return tk.State == state })
}

// waitTask returns the task once ok holds for it, looking again at every
// event of its session.
func waitTask(t *testing.T, c *bgapi.Client, id, what string, ok func(*bgapi.Task) bool) *bgapi.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tk, err := c.Task(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 1)
	go c.Events(ctx, tk.Session, bgapi.EventsOptions{Follow: true}, func(bgapi.Event) error {
		select {
		case changed <- struct{}{}:
		default:
		}
		return nil
	})
	for {
		if tk, err = c.Task(ctx, id); err != nil {
			t.Fatal(err)
		}
		if ok(tk) {
			return tk
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Millisecond): // progress has no events
		case <-ctx.Done():
			t.Fatalf("task %s never got %s: %+v %+v", id, what, tk, tk.Progress)
		}
	}
}

// gets signals each GET of the resource on ch (without blocking): the
// download has opened its part file by then.
func gets(ch chan<- struct{}) ferrytest.Option {
	return ferrytest.Handler(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/file" {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			next.ServeHTTP(w, r)
		})
	})
}

// gate holds every GET of the resource until open is closed (or the
// client gives up).
func gate(open <-chan struct{}) ferrytest.Option {
	return ferrytest.Handler(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				select {
				case <-open:
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	})
}

func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("no %s in %v", what, testTimeout)
	}
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
		t.Fatalf("the closed port was taken meanwhile: %v", err)
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
// again; the completion is reported once, and its result counts both runs.
func TestRestartContinues(t *testing.T) {
	state := t.TempDir()
	d := startDaemon(t, state, nil)
	// The first GET sends a part and then nothing: the daemon stops with
	// that part on disk.
	const part = 1 << 20
	srv := ferrytest.NewServer(t, ferrytest.Size(3<<20), ferrytest.Stall(part, time.Hour, 1))
	path := filepath.Join(t.TempDir(), "r.bin")
	tk, err := d.c.Create(context.Background(), "s", bgapi.NewTask{Get: &bgapi.GetRequest{URL: srv.URL + "/file", Path: path, Connections: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// Progress counts what is written, which lags what came by a buffer.
	waitTask(t, d.c, tk.ID, "half its first part", func(tk *bgapi.Task) bool { return tk.Progress != nil && tk.Progress.Done >= part/2 })
	d.stop()
	d2 := startDaemon(t, state, nil)
	got, err := d2.c.Wait(context.Background(), tk.ID)
	if err != nil || got.State != bgapi.Done || ferrytest.FileSHA256(t, path) != srv.SHA256() {
		t.Fatalf("%+v %v", got, err)
	}
	r := got.Result
	if r.ResumedFrom < part/2 {
		t.Errorf("the restarted daemon resumed from %d of %d bytes: it did not continue", r.ResumedFrom, r.Size)
	}
	// Each run counts: the first moved at least what it wrote, the second
	// the rest, so together no less than the file.
	if r.Downloaded < r.Size {
		t.Errorf("downloaded %d bytes in all, of %d: the first run is not counted", r.Downloaded, r.Size)
	}
	var m struct{ Transactions []json.RawMessage }
	if json.Unmarshal(r.Metrics, &m) != nil || len(m.Transactions) == 0 || len(r.Verified) == 0 {
		t.Errorf("the result has no metrics (%s) or no checks (%v)", r.Metrics, r.Verified)
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

// Higher priority runs first; a task held back until a time waits for it.
func TestPriorityAndNotBefore(t *testing.T) {
	d := startDaemon(t, t.TempDir(), func(c *Config) { c.MaxTasks = 1 })
	ctx := context.Background()
	// The first task holds the only slot until the others are queued.
	open := make(chan struct{})
	slow := ferrytest.NewServer(t, ferrytest.Size(512<<10), gate(open))
	quick := ferrytest.NewServer(t, ferrytest.Size(1024))
	out := t.TempDir()
	get := func(name string, srv *ferrytest.Server, prio int, notBefore time.Time) string {
		tk, err := d.c.Create(ctx, "p", bgapi.NewTask{Priority: prio, NotBefore: notBefore,
			Get: &bgapi.GetRequest{URL: srv.URL + "/file", Path: filepath.Join(out, name)}})
		if err != nil {
			t.Fatal(err)
		}
		return tk.ID
	}
	first := get("first", slow, 0, time.Time{}) // occupies the only slot
	waitState(t, d.c, first, bgapi.Running)
	held := get("held", quick, 10, time.Now().Add(400*time.Millisecond))
	low := get("low", quick, 0, time.Time{})
	high := get("high", quick, 5, time.Time{})
	close(open)
	for _, id := range []string{first, held, low, high} {
		if _, err := d.c.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	for _, e := range collect(t, d.c, "p", 0) {
		if e.Type == bgapi.EventStarted {
			order = append(order, e.Task)
		}
	}
	// first (running), then high before low; held not before its time,
	// which comes while the others still run or after.
	pos := map[string]int{}
	for i, id := range order {
		pos[id] = i
	}
	if pos[first] != 0 || pos[high] > pos[low] {
		t.Errorf("start order %v: want %s first and %s before %s", order, first, high, low)
	}
	tk, _ := d.c.Task(ctx, held)
	if started := startedAt(t, d.c, "p", held); started.Before(tk.NotBefore) {
		t.Errorf("held task started at %v, before its time %v", started, tk.NotBefore)
	}
}

func startedAt(t *testing.T, c *bgapi.Client, session, id string) time.Time {
	for _, e := range collect(t, c, session, 0) {
		if e.Type == bgapi.EventStarted && e.Task == id {
			return e.Time
		}
	}
	t.Fatalf("task %s never started", id)
	return time.Time{}
}

// Uploads and HLS downloads run in the daemon too.
func TestUploadAndHLS(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	ctx := context.Background()
	uploads := t.TempDir()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.m3u8"), []byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n#EXT-X-ENDLIST\n"), 0o644)
	os.WriteFile(filepath.Join(root, "a.ts"), []byte("segment a"), 0o644)
	os.WriteFile(filepath.Join(root, "b.ts"), []byte("segment b"), 0o644)
	h, err := server.New(server.Config{Root: root, Uploads: uploads})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	defer h.Close()
	src := filepath.Join(t.TempDir(), "up.bin")
	os.WriteFile(src, make([]byte, 300<<10), 0o644)
	put, err := d.c.Create(ctx, "m", bgapi.NewTask{Put: &bgapi.PutRequest{URL: ts.URL + "/files/", Path: src}})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "show")
	hls, err := d.c.Create(ctx, "m", bgapi.NewTask{HLS: &bgapi.HLSRequest{URL: ts.URL + "/index.m3u8", Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err := d.c.Wait(ctx, put.ID); err != nil || tk.State != bgapi.Done || tk.Result.Location == "" || tk.Result.SHA256 != ferrytest.FileSHA256(t, src) {
		t.Fatalf("upload: %+v %v", tk, err)
	}
	if tk, err := d.c.Wait(ctx, hls.ID); err != nil || tk.State != bgapi.Done || tk.Result.Segments != 2 {
		t.Fatalf("hls: %+v %v", tk, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.m3u8")); err != nil {
		t.Fatal(err)
	}
	// A relative path is refused up front.
	if _, err := d.c.Create(ctx, "m", bgapi.NewTask{Get: &bgapi.GetRequest{URL: ts.URL + "/a.ts", Path: "rel.bin"}}); err == nil {
		t.Error("a relative path was accepted")
	}
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestMetrics(t *testing.T) {
	addr := freeAddr(t)
	d := startDaemon(t, t.TempDir(), func(c *Config) { c.MetricsAddr = addr })
	srv := ferrytest.NewServer(t, ferrytest.Size(1000))
	tk, _ := d.c.Create(context.Background(), "m", bgapi.NewTask{Get: &bgapi.GetRequest{URL: srv.URL + "/file", Path: filepath.Join(t.TempDir(), "x")}})
	d.c.Wait(context.Background(), tk.ID)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`ferry_daemon_tasks{state="done"} 1`, "ferry_daemon_running_transfers 0", "# TYPE ferry_daemon_tasks gauge"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}

// A transfer has left the running set by the time its end can be seen:
// metrics and health scraped once Wait returns count it no longer.
func TestRunningEndsBeforeDone(t *testing.T) {
	addr := freeAddr(t)
	hold := make(chan struct{})
	d := startDaemon(t, t.TempDir(), func(c *Config) {
		c.MetricsAddr = addr
		c.recorded = func(string) { <-hold } // the run is not yet forgotten
	})
	defer close(hold)
	srv := ferrytest.NewServer(t, ferrytest.Size(1000))
	tk, err := d.c.Create(context.Background(), "m", bgapi.NewTask{Get: &bgapi.GetRequest{URL: srv.URL + "/file", Path: filepath.Join(t.TempDir(), "x")}})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = d.c.Wait(context.Background(), tk.ID); err != nil || tk.State != bgapi.Done {
		t.Fatalf("wait: %+v %v", tk, err)
	}
	if tk.Progress != nil {
		t.Errorf("a done task reports live progress %+v", tk.Progress)
	}
	h, err := d.c.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Running != 0 || h.Tasks != 0 {
		t.Errorf("health after the task is done: %+v", h)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "ferry_daemon_running_transfers 0\n") {
		t.Errorf("metrics once Wait returned:\n%s", b)
	}
}
