package ferry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/daemon"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/server"
)

// runDaemon runs a daemon in this process (standing in for the one a
// background session would start) and returns where to find it.
func runDaemon(t testing.TB) ferry.DaemonConfig {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "fd") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	dc := ferry.DaemonConfig{StateDir: t.TempDir(), Socket: filepath.Join(sockDir, "d.sock"),
		Command: []string{"/nonexistent/ferry"}} // never start another
	startDaemonAt(t, dc)
	return dc
}

// startDaemonAt runs a daemon on dc's state and socket until the returned
// stop (or the test's end).
func startDaemonAt(t testing.TB, dc ferry.DaemonConfig) (stop func()) {
	t.Helper()
	ready := make(chan struct{})
	cfg := daemon.Config{StateDir: dc.StateDir, Socket: dc.Socket, Ready: func() { close(ready) },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon: %v", err)
	}
	return stop
}

// A background session's download goes on after the session is closed
// (the program gone); the next session with the same identifier gets the
// task back and the events it missed, once, until acknowledged.
func TestBackgroundRelaunch(t *testing.T) {
	dc := runDaemon(t)
	srv := ferrytest.NewServer(t, ferrytest.Size(2<<20), ferrytest.Throttle(4<<20))
	path := filepath.Join(t.TempDir(), "big.bin")

	s1, err := ferry.NewSession(ferry.Config{Background: "relaunch", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	task, err := s1.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/file", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	id := task.ID()
	s1.Close() // the program exits; the daemon carries on

	s2, err := ferry.NewSession(ferry.Config{Background: "relaunch", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	again := s2.Task(id)
	if again == nil {
		t.Fatalf("the relaunched session does not have task %s; it has %d", id, len(s2.Tasks()))
	}
	res, err := again.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != srv.SHA256() {
		t.Fatalf("result %+v, want sha %s", res, srv.SHA256())
	}
	var last uint64
	types := map[string]int{}
	timeout := time.After(time.Minute)
	for types["done"] == 0 {
		select {
		case ev := <-s2.BackgroundEvents():
			if ev.Task != id {
				t.Fatalf("event of another task: %+v", ev)
			}
			types[ev.Type]++
			last = ev.Seq
		case <-timeout:
			t.Fatalf("no done event; got %v", types)
		}
	}
	if types["created"] != 1 || types["started"] != 1 || types["done"] != 1 {
		t.Fatalf("events %v", types)
	}
	if err := s2.Ack(last); err != nil {
		t.Fatal(err)
	}
	s2.Close()

	// Acknowledged events are not delivered again: the first event the
	// next session gets is a new one.
	s3, err := ferry.NewSession(ferry.Config{Background: "relaunch", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	fresh, err := s3.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/file", Path: path + ".2"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-s3.BackgroundEvents():
		if ev.Seq <= last || ev.Task != fresh.ID() {
			t.Fatalf("an acknowledged event came again: %+v", ev)
		}
	case <-time.After(time.Minute):
		t.Fatal("no event for the new task")
	}
}

// One process at a time holds a background session's identifier; other
// identifiers are free.
func TestBackgroundSessionInUse(t *testing.T) {
	dc := runDaemon(t)
	s1, err := ferry.NewSession(ferry.Config{Background: "uploader", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	if _, err := ferry.NewSession(ferry.Config{Background: "uploader", Daemon: dc}); !errors.Is(err, ferry.ErrSessionInUse) {
		t.Fatalf("second session: %v, want ErrSessionInUse", err)
	}
	s2, err := ferry.NewSession(ferry.Config{Background: "downloader", Daemon: dc})
	if err != nil {
		t.Fatalf("another identifier: %v", err)
	}
	s2.Close()
}

// Cancel reaches the daemon; CancelAll cancels what the session has there.
func TestBackgroundCancel(t *testing.T) {
	dc := runDaemon(t)
	// The downloads stall: they are unfinished when they are cancelled.
	srv := ferrytest.NewServer(t, ferrytest.Size(8<<20), ferrytest.Stall(64<<10, time.Hour, 100))
	s, err := ferry.NewSession(ferry.Config{Background: "c", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dir := t.TempDir()
	a, _ := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/file", Path: filepath.Join(dir, "a")})
	b, _ := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/file", Path: filepath.Join(dir, "b")})
	a.Cancel()
	if _, err := a.Wait(context.Background()); !errors.Is(err, ferry.ErrCanceled) {
		t.Fatalf("cancelled task: %v", err)
	}
	if err := s.CancelAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(context.Background()); !errors.Is(err, ferry.ErrCanceled) {
		t.Fatalf("task after CancelAll: %v", err)
	}
}

// A task suspended through the session stays paused in the daemon and comes
// back suspended to the next session; Resume there continues it.
func TestBackgroundSuspendSticks(t *testing.T) {
	dc := runDaemon(t)
	// The first GET stalls: the download is unfinished when it is
	// suspended, however slow the machine.
	srv := ferrytest.NewServer(t, ferrytest.Size(4<<20), ferrytest.Stall(64<<10, time.Hour, 1))
	path := filepath.Join(t.TempDir(), "s.bin")
	s1, err := ferry.NewSession(ferry.Config{Background: "sus", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	task, err := s1.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/file", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	waitProgress(t, task, 1)
	task.Suspend()
	id := task.ID()
	s1.Close()

	s2, err := ferry.NewSession(ferry.Config{Background: "sus", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	again := s2.Task(id)
	if again == nil || again.State() != ferry.StateSuspended {
		t.Fatalf("the paused task came back as %v", again)
	}
	c := bgapi.NewClient(dc.Socket)
	defer c.Close()
	if bt, err := c.Task(context.Background(), id); err != nil || bt.State != bgapi.Paused {
		t.Fatalf("in the daemon the task is %+v (%v): it was resumed behind the session's back", bt, err)
	}
	again.Resume()
	res, err := again.Wait(context.Background())
	if err != nil || res.SHA256 != srv.SHA256() {
		t.Fatalf("after Resume: %+v %v", res, err)
	}
}

// A daemon that restarts under an attached session: the session reattaches,
// its task completes, and its events go on from where they were.
func TestBackgroundDaemonRestart(t *testing.T) {
	sockDir, _ := os.MkdirTemp("", "fd")
	defer os.RemoveAll(sockDir)
	dc := ferry.DaemonConfig{StateDir: t.TempDir(), Socket: filepath.Join(sockDir, "d.sock"), Command: []string{"/nonexistent/ferry"}}
	stop := startDaemonAt(t, dc)
	// The first GET stalls: the download is unfinished when the daemon
	// stops, however slow the machine.
	srv := ferrytest.NewServer(t, ferrytest.Size(3<<20), ferrytest.Stall(64<<10, time.Hour, 1))
	s, err := ferry.NewSession(ferry.Config{Background: "restart", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	task, err := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/file", Path: filepath.Join(t.TempDir(), "r.bin")})
	if err != nil {
		t.Fatal(err)
	}
	waitProgress(t, task, 1)
	stop()
	startDaemonAt(t, dc)
	res, err := task.Wait(context.Background())
	if err != nil || res.SHA256 != srv.SHA256() {
		t.Fatalf("after the daemon restarted: %+v %v", res, err)
	}
	seen := map[string]int{}
	var last uint64
	timeout := time.After(time.Minute)
	for seen["done"] == 0 {
		select {
		case ev, ok := <-s.BackgroundEvents():
			if !ok {
				t.Fatalf("the event stream ended; got %v", seen)
			}
			if ev.Seq <= last {
				t.Fatalf("event %d after %d", ev.Seq, last)
			}
			last = ev.Seq
			seen[ev.Type]++
		case <-timeout:
			t.Fatalf("no done event after the restart; got %v", seen)
		}
	}
	if seen["started"] != 2 || seen["done"] != 1 {
		t.Errorf("events %v: want it started twice (before and after the restart) and done once", seen)
	}
}

// A background session that starts a daemon writes its log into the state
// directory only if that is the user's alone, and never through a link.
func TestBackgroundDaemonLogSafe(t *testing.T) {
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("mine\n"), 0o600)
	sockDir, err := os.MkdirTemp("", "fd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	for _, loose := range []bool{false, true} {
		state := t.TempDir()
		os.Symlink(victim, filepath.Join(state, "daemon.log"))
		if loose {
			os.Chmod(state, 0o777)
		}
		dc := ferry.DaemonConfig{StateDir: state, Socket: filepath.Join(sockDir, "d.sock"),
			Command: []string{"/bin/echo", "written through the link"}}
		s, err := ferry.NewSession(ferry.Config{Background: "logs", Daemon: dc})
		if err == nil {
			s.Close()
			t.Fatal("a session started with no daemon to be had")
		}
		if loose && !errors.Is(err, bgapi.ErrUnsafe) {
			t.Errorf("state directory writable by others: %v, want ErrUnsafe", err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "mine\n" {
			t.Fatalf("the file behind daemon.log now holds %q (%v)", b, err)
		}
	}
}

// The fields of a request that a background session carries reach the
// daemon's engine, and what the engine reports comes back: CreateDirs
// makes the missing directories of a download, and MaxSegments bounds an
// HLS download.
func TestBackgroundRequestFields(t *testing.T) {
	dc := runDaemon(t)
	s, err := ferry.NewSession(ferry.Config{Background: "fields", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	srv := ferrytest.NewServer(t, ferrytest.Size(64<<10))
	path := filepath.Join(t.TempDir(), "made", "here", "f.bin")
	task, err := s.Download(ctx, ferry.DownloadRequest{URL: srv.URL + "/file", Path: path, CreateDirs: true})
	if err != nil {
		t.Fatalf("a background download with CreateDirs: %v", err)
	}
	res, err := task.Wait(ctx)
	if err != nil || res.SHA256 != srv.SHA256() {
		t.Fatalf("background download with CreateDirs: %+v %v", res, err)
	}
	// The result is the whole of what the daemon's run reported.
	if len(res.Verified) == 0 || len(res.Metrics.Transactions) == 0 || res.Proto == "" || res.Downloaded != 64<<10 {
		t.Errorf("background result %+v: checks, metrics, protocol or bytes missing", res)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}

	o := newHLSOrigin(t, false)
	o.vod("/v", 11, nil)
	for _, tc := range []struct {
		max  int
		fail bool
	}{{10, true}, {11, false}} {
		task, err := s.HLS(ctx, ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: t.TempDir(), MaxSegments: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		_, err = task.Wait(ctx)
		if tc.fail && (err == nil || !strings.Contains(err.Error(), "more than 10 segments")) {
			t.Errorf("MaxSegments %d, 11 segments: %v, want the limit", tc.max, err)
		}
		if !tc.fail && err != nil {
			t.Errorf("MaxSegments %d, 11 segments: %v", tc.max, err)
		}
	}
}

// A background upload carries its tus metadata and its multipart field
// name to the server, as a foreground one does.
func TestBackgroundUploadFields(t *testing.T) {
	dc := runDaemon(t)
	s, err := ferry.NewSession(ferry.Config{Background: "upfields", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var metadata, form string
	origin := uploadOrigin(t, server.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if m := r.Header.Get("Upload-Metadata"); m != "" {
				metadata = m
			}
			if r.URL.Path == "/upload" {
				b, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(b))
				form = string(b)
			}
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	})
	path, _ := makeFile(t, 1000)
	for _, req := range []ferry.UploadRequest{
		{URL: origin + "/files/", Path: path, Protocol: ferry.ProtocolTus, Metadata: map[string]string{"note": "hi"}},
		{URL: origin + "/upload", Path: path, Protocol: ferry.ProtocolMultipart, FieldName: "attachment"},
	} {
		task, err := s.Upload(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		task.Wait(ctx) // the server may refuse the field: what was sent counts
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(metadata, "note aGk=") {
		t.Errorf("Upload-Metadata %q, want note=hi in it", metadata)
	}
	if !strings.Contains(form, `name="attachment"`) {
		t.Errorf("the form's part head: %.200q, want the field attachment", form)
	}
}

// A request's Schedule reaches the daemon with the task: the task waits
// for NotBefore with its Priority. A foreground session refuses one.
func TestBackgroundSchedule(t *testing.T) {
	dc := runDaemon(t)
	s, err := ferry.NewSession(ferry.Config{Background: "sched", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	sch := ferry.Schedule{Priority: 7, NotBefore: later}
	dir := t.TempDir()
	if _, err := s.NewDownload(ctx, ferry.DownloadRequest{URL: "http://127.0.0.1:9/f", Path: filepath.Join(dir, "f"), Schedule: sch}); err != nil {
		t.Fatal(err)
	}
	up := filepath.Join(dir, "up")
	if err := os.WriteFile(up, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewUpload(ctx, ferry.UploadRequest{URL: "http://127.0.0.1:9/files/", Path: up, Schedule: sch}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HLS(ctx, ferry.HLSRequest{URL: "http://127.0.0.1:9/i.m3u8", Dir: dir, Schedule: sch}); err != nil {
		t.Fatal(err)
	}
	c := bgapi.NewClient(dc.Socket)
	defer c.Close()
	tasks, err := c.Tasks(ctx, "sched")
	if err != nil || len(tasks) != 3 {
		t.Fatalf("the daemon has %d tasks (%v), want 3", len(tasks), err)
	}
	for _, tk := range tasks {
		if tk.Priority != 7 || !tk.NotBefore.Equal(later) || tk.State != bgapi.Queued {
			t.Errorf("%s task: priority %d, not before %v, %s; want 7, %v, queued", tk.Kind, tk.Priority, tk.NotBefore, tk.State, later)
		}
	}

	fg := mustSession(t, testConfig(false))
	_, err = fg.NewDownload(ctx, ferry.DownloadRequest{URL: "http://127.0.0.1:9/f", Path: filepath.Join(dir, "g"), Schedule: sch})
	if !errors.Is(err, ferry.ErrInvalidRequest) {
		t.Errorf("a foreground download with a Schedule: %v, want ErrInvalidRequest", err)
	}
}

// A Daemon manages any session's tasks without attaching to it: it
// queues, lists, pauses, resumes, cancels and waits, reads the events, and
// writes a task as the daemon's API does.
func TestDaemonManagesTasks(t *testing.T) {
	dc := runDaemon(t)
	d := ferry.NewDaemon(dc)
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := ferry.DownloadRequest{URL: "http://127.0.0.1:9/f", Path: filepath.Join(t.TempDir(), "f"),
		Schedule: ferry.Schedule{NotBefore: time.Now().Add(time.Hour)}}
	tk, err := d.Download(ctx, "m", req)
	if err != nil {
		t.Fatal(err)
	}
	if remote, local, ok := tk.Stored.Ends(); tk.State != "queued" || !ok || remote != req.URL || local != req.Path {
		t.Fatalf("queued %+v (ends %s, %s)", tk, remote, local)
	}
	for _, step := range []struct {
		act  func(context.Context, string) (*ferry.BackgroundTask, error)
		want string
	}{{d.Pause, "paused"}, {d.Resume, "queued"}, {d.Cancel, "canceled"}} {
		if got, err := step.act(ctx, tk.ID); err != nil || got.State != step.want {
			t.Fatalf("%v, %v; want %s", got, err, step.want)
		}
	}
	done, err := d.Wait(ctx, tk.ID)
	if err != nil || !done.Ended() {
		t.Fatalf("Wait: %+v, %v", done, err)
	}
	tasks, err := d.Tasks(ctx, "m")
	if err != nil || len(tasks) != 1 || tasks[0].ID != tk.ID {
		t.Fatalf("Tasks: %v, %v", tasks, err)
	}
	var wire bgapi.Task
	if b, err := json.Marshal(tasks[0]); err != nil || json.Unmarshal(b, &wire) != nil || wire.ID != tk.ID || wire.State != bgapi.Canceled {
		t.Fatalf("JSON %s (%v): not the daemon's task", b, err)
	}
	var types []string
	if err := d.Events(ctx, "m", ferry.EventsOptions{}, func(e ferry.BackgroundEvent) error {
		types = append(types, e.Type)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(types, " "); got != "created paused resumed canceled" {
		t.Errorf("events %q", got)
	}
	if _, err := d.Task(ctx, "nope"); !errors.Is(err, ferry.ErrNoTask) {
		t.Errorf("an unknown task: %v, want ErrNoTask", err)
	}
	if _, err := d.Upload(ctx, "m", ferry.UploadRequest{URL: "http://127.0.0.1:9/files/", Path: "/nonexistent"}); !errors.Is(err, ferry.ErrInvalidRequest) {
		t.Errorf("an upload of a missing file: %v, want ErrInvalidRequest", err)
	}
}

// A background task's failure is an *Error with its typed causes, as a
// foreground one is: a 404 is a *StatusError.
func TestBackgroundErrorIsTyped(t *testing.T) {
	dc := runDaemon(t)
	s, err := ferry.NewSession(ferry.Config{Background: "typed", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	task, err := s.Download(ctx, ferry.DownloadRequest{URL: ts.URL + "/gone", Path: filepath.Join(t.TempDir(), "f")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = task.Wait(ctx)
	fe, isError := errors.AsType[*ferry.Error](err)
	se, isStatus := errors.AsType[*ferry.StatusError](err)
	if !isError || fe.URL != ts.URL+"/gone" || !isStatus || se.StatusCode != http.StatusNotFound || se.Retryable() {
		t.Fatalf("background 404: %v (%T); want an *Error with a 404 *StatusError", err, err)
	}
	if want := "ferry: probe " + ts.URL + "/gone: unexpected status 404 Not Found"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
