package ferry_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/daemon"
	"github.com/ferryhq/ferry/ferrytest"
)

// runDaemon runs a daemon in this process (standing in for the one a
// background session would start) and returns where to find it.
func runDaemon(t testing.TB) ferry.DaemonConfig {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "fd") // unix socket paths are short
	if err != nil {
		t.Fatal(err)
	}
	dc := ferry.DaemonConfig{StateDir: t.TempDir(), Socket: filepath.Join(sockDir, "d.sock"),
		Command: []string{"/nonexistent/ferry"}} // never start another
	ready := make(chan struct{})
	cfg := daemon.Config{StateDir: dc.StateDir, Socket: dc.Socket, Ready: func() { close(ready) },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		<-done
		os.RemoveAll(sockDir)
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon: %v", err)
	}
	return dc
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
	timeout := time.After(10 * time.Second)
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

	// Acknowledged events are not delivered again.
	s3, err := ferry.NewSession(ferry.Config{Background: "relaunch", Daemon: dc})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	select {
	case ev := <-s3.BackgroundEvents():
		t.Fatalf("an acknowledged event came again: %+v", ev)
	case <-time.After(200 * time.Millisecond):
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
	srv := ferrytest.NewServer(t, ferrytest.Size(8<<20), ferrytest.Throttle(1<<20))
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
