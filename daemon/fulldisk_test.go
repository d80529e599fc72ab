package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/bgapi"
)

// smallDisk mounts a tmpfs of size bytes for the test.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		needRoot(t, "needs root to mount a small tmpfs to fill")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		needRoot(t, "cannot mount a tmpfs here (%v): the full-disk test needs one", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

// fill writes a file until the disk is full and returns it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for range 1 << 20 {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
	t.Fatal("the disk never filled")
	return ""
}

// signalWriter signals on ch each write that holds match (a log line).
type signalWriter struct {
	match string
	ch    chan struct{}
}

func (w signalWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.match) {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// The disk under the journal fills up: tasks are refused with 507 while
// it is full, reads go on, the end of a transfer that cannot be recorded
// is recorded once there is room (and the next task starts then), nothing
// acknowledged is lost, and the daemon starts again on a sound journal.
func TestFullDisk(t *testing.T) {
	disk := smallDisk(t, "2m")
	state := filepath.Join(disk, "state")
	unrecorded := make(chan struct{}, 1)
	d := startDaemon(t, state, func(c *Config) {
		c.MaxTasks = 1
		c.Logger = slog.New(slog.NewTextHandler(signalWriter{"recording a task's end failed", unrecorded}, nil))
	})
	ctx := context.Background()
	// A transfer held at a gate has the only slot; a second task waits.
	open, got := make(chan struct{}), make(chan struct{}, 1)
	held := ferrytest.NewServer(t, ferrytest.Size(1000), gets(got), gate(open))
	quick := ferrytest.NewServer(t, ferrytest.Size(1000))
	first, err := d.c.Create(ctx, "run", bgapi.NewTask{Get: &bgapi.GetRequest{URL: held.URL + "/file", Path: filepath.Join(t.TempDir(), "a")}})
	if err != nil {
		t.Fatal(err)
	}
	await(t, got, "GET of the first file")
	second, err := d.c.Create(ctx, "run", bgapi.NewTask{Get: &bgapi.GetRequest{URL: quick.URL + "/file", Path: filepath.Join(t.TempDir(), "b")}})
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour) // queued, never run
	create := func(i int) error {
		_, err := d.c.Create(ctx, "full", bgapi.NewTask{NotBefore: later,
			Get: &bgapi.GetRequest{URL: "http://127.0.0.1:1/f", Path: filepath.Join(t.TempDir(), "f"), Header: http.Header{"X-Pad": {string(make([]byte, 512))}}}})
		return err
	}
	filler := fill(t, disk)
	acked, refused := 0, 0
	for i := 0; refused < 20 && i < 5000; i++ {
		err := create(i)
		var e *bgapi.Error
		switch {
		case err == nil:
			acked++
		case errors.As(err, &e) && e.Problem.Status == http.StatusInsufficientStorage:
			refused++
		default:
			t.Fatalf("create %d on a full disk: %v", i, err)
		}
	}
	if refused == 0 {
		t.Fatal("the disk never filled for the journal")
	}
	if ts, err := d.c.Tasks(ctx, "full"); err != nil || len(ts) != acked {
		t.Fatalf("on a full disk: %d tasks listed, %d acknowledged (%v)", len(ts), acked, err)
	}
	close(open) // the first transfer ends, and its end cannot be recorded
	await(t, unrecorded, "failure to record the first task's end")
	os.Remove(filler)
	for _, id := range []string{first.ID, second.ID} {
		wctx, cancel := context.WithTimeout(ctx, testTimeout)
		tk, err := d.c.Wait(wctx, id)
		cancel()
		if err != nil || tk.State != bgapi.Done {
			t.Fatalf("task %s once there is room again: %+v %v", id, tk, err)
		}
	}
	for i := range 20 {
		if err := create(i); err != nil {
			t.Fatalf("with room again: %v", err)
		}
		acked++
	}
	d.stop()
	d2 := startDaemon(t, state, nil)
	ts, err := d2.c.Tasks(ctx, "full")
	if err != nil || len(ts) != acked {
		t.Fatalf("after a restart: %d tasks, %d acknowledged (%v)", len(ts), acked, err)
	}
	t.Logf("full disk: %d creates acknowledged, %d refused with 507, 0 lost", acked, refused)
}

// While the disk is full, pause, cancel and resume of a task whose end
// waits to be recorded answer 507 (the journal cannot be written) after a
// short wait, instead of holding the caller until there is room; once
// there is, the end is recorded as it was.
func TestFullDiskControl(t *testing.T) {
	disk := smallDisk(t, "2m")
	unrecorded := make(chan struct{}, 1)
	d := startDaemon(t, filepath.Join(disk, "state"), func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(signalWriter{"recording a task's end failed", unrecorded}, nil))
	})
	ctx := context.Background()
	open, got := make(chan struct{}), make(chan struct{}, 1)
	held := ferrytest.NewServer(t, ferrytest.Size(1000), gets(got), gate(open))
	// A long URL makes the task's end a large record (the request and
	// the result name it): more pages than a small task takes.
	url := held.URL + "/file?pad=" + strings.Repeat("x", 64<<10)
	tk, err := d.c.Create(ctx, "run", bgapi.NewTask{Get: &bgapi.GetRequest{URL: url, Path: filepath.Join(t.TempDir(), "a")}})
	if err != nil {
		t.Fatal(err)
	}
	await(t, got, "GET of the file")
	filler := fill(t, disk)
	// Small tasks fill what room the journal's file has left: there is
	// none for the task's end.
	for i, refused := 0, 0; refused < 20; i++ {
		if i == 5000 {
			t.Fatal("the disk never filled for the journal")
		}
		_, err := d.c.Create(ctx, "full", bgapi.NewTask{NotBefore: time.Now().Add(time.Hour),
			Get: &bgapi.GetRequest{URL: "http://127.0.0.1:1/f", Path: filepath.Join(t.TempDir(), "f")}})
		var e *bgapi.Error
		if errors.As(err, &e) && e.Problem.Status == http.StatusInsufficientStorage {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	close(open) // the transfer ends, and its end cannot be recorded
	await(t, unrecorded, "failure to record the task's end")
	actions := []struct {
		name string
		do   func(context.Context, string) (*bgapi.Task, error)
	}{{"pause", d.c.Pause}, {"cancel", d.c.Cancel}, {"resume", d.c.Resume}}
	for _, a := range actions {
		actx, cancel := context.WithTimeout(ctx, testTimeout)
		_, err := a.do(actx, tk.ID)
		cancel()
		var e *bgapi.Error
		if !errors.As(err, &e) || e.Problem.Status != http.StatusInsufficientStorage || !strings.Contains(e.Problem.Title, "journal cannot be written") {
			t.Fatalf("%s while the task's end cannot be recorded: %v, want 507 (the journal cannot be written)", a.name, err)
		}
	}
	os.Remove(filler)
	wctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	if tk, err := d.c.Wait(wctx, tk.ID); err != nil || tk.State != bgapi.Done {
		t.Fatalf("once there is room again: %+v %v", tk, err)
	}
}
