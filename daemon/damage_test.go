package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// zeroJournal zeroes the pages of the journal at path after its two meta
// pages, under the daemon that has it open.
func zeroJournal(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta := make([]byte, 28) // page header, magic, version, page size
	fi, err := f.Stat()
	if err == nil {
		_, err = f.ReadAt(meta, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	skip := 2 * int64(binary.NativeEndian.Uint32(meta[24:]))
	if _, err := f.WriteAt(make([]byte, fi.Size()-skip), skip); err != nil {
		t.Fatal(err)
	}
}

// A journal found damaged by a write while the daemon runs stops the
// daemon: Run returns ErrDamaged with the advice to recover, instead of
// hanging on the damaged file.
func TestDamagedWhileRunning(t *testing.T) {
	state := t.TempDir()
	cfg := quietConfig(state, filepath.Join(shortDir(t), "d.sock"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	c := bgapi.NewClient(cfg.Socket)
	defer c.Close()
	if err := c.WaitReady(ctx, testTimeout); err != nil {
		t.Fatal(err)
	}
	task := bgapi.NewTask{NotBefore: time.Now().Add(time.Hour),
		Get: &bgapi.GetRequest{URL: "http://127.0.0.1:1/f", Path: filepath.Join(t.TempDir(), "f")}}
	if _, err := c.Create(ctx, "s", task); err != nil {
		t.Fatal(err)
	}
	zeroJournal(t, journalPath(state))
	if _, err := c.Create(ctx, "s", task); err == nil {
		t.Fatal("a task was created over a damaged journal")
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "ferry daemon --recover --state "+state) {
			t.Fatalf("Run over a journal damaged while in use: %v, want ErrDamaged and the advice", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the daemon does not stop over a journal damaged while in use")
	}
}
