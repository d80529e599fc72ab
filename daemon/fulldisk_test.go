package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// smallDisk mounts a tmpfs of size bytes for the test.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs to fill")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the full-disk test needs one", err)
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

// The disk under the journal fills up: tasks are refused with 507 while
// it is full, reads go on, nothing acknowledged is lost, and once there is
// room again the daemon carries on, and starts again on a sound journal.
func TestFullDisk(t *testing.T) {
	disk := smallDisk(t, "2m")
	state := filepath.Join(disk, "state")
	d := startDaemon(t, state, nil)
	ctx := context.Background()
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
	os.Remove(filler)
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
