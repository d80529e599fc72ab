package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/bgapi"
)

// The daemon refuses what the library refuses, with a 400 problem, before
// anything is queued: a count above its bound costs nothing.
func TestCreateRefusesWhatTheLibraryRefuses(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, nil, 0o644)
	os.Symlink(victim, filepath.Join(dir, "link"))
	const u = "http://127.0.0.1:1/f"
	tests := []struct {
		name string
		nt   bgapi.NewTask
	}{
		{"get -x 1e6", bgapi.NewTask{Get: &bgapi.GetRequest{URL: u, Path: filepath.Join(dir, "d"), Connections: 1_000_000}}},
		{"get -x max+1", bgapi.NewTask{Get: &bgapi.GetRequest{URL: u, Path: filepath.Join(dir, "d"), Connections: ferry.MaxConnections + 1}}},
		{"get negative", bgapi.NewTask{Get: &bgapi.GetRequest{URL: u, Path: filepath.Join(dir, "d"), Connections: -1}}},
		{"get bad checksum", bgapi.NewTask{Get: &bgapi.GetRequest{URL: u, Path: filepath.Join(dir, "d"), Checksum: "md5=00"}}},
		{"get no parent", bgapi.NewTask{Get: &bgapi.GetRequest{URL: u, Path: filepath.Join(dir, "none", "d")}}},
		{"get to a FIFO", bgapi.NewTask{Get: &bgapi.GetRequest{URL: u, Path: fifo}}},
		{"get to a link", bgapi.NewTask{Get: &bgapi.GetRequest{URL: u, Path: filepath.Join(dir, "link")}}},
		{"hls concat to a link", bgapi.NewTask{HLS: &bgapi.HLSRequest{URL: u, Dir: filepath.Join(dir, "h"), Concat: filepath.Join(dir, "link")}}},
		{"put -x", bgapi.NewTask{Put: &bgapi.PutRequest{URL: u, Path: src, Connections: ferry.MaxConnections + 1}}},
		{"put chunk", bgapi.NewTask{Put: &bgapi.PutRequest{URL: u, Path: src, ChunkSize: 1}}},
		{"hls -x", bgapi.NewTask{HLS: &bgapi.HLSRequest{URL: u, Dir: filepath.Join(dir, "h"), Connections: 1_000_000}}},
		{"hls variant", bgapi.NewTask{HLS: &bgapi.HLSRequest{URL: u, Dir: filepath.Join(dir, "h"), Variant: "middle"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.c.Create(context.Background(), "s", tt.nt)
			var be *bgapi.Error
			if !errors.As(err, &be) || be.Problem.Status != 400 || be.Problem.Type != bgapi.ProblemBadRequest {
				t.Fatalf("Create: %v, want a 400 bad-request problem", err)
			}
		})
	}
	ts, err := d.c.Tasks(context.Background(), "s")
	if err != nil || len(ts) != 0 {
		t.Errorf("%d refused requests were queued (%v)", len(ts), err)
	}
}

// A download into a directory is stored with the file's own name, so that
// the daemon's clean-up after it finds its control file.
func TestDownloadIntoADirectory(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	srv := ferrytest.NewServer(t, ferrytest.Size(64<<10))
	out := t.TempDir()
	tk, err := d.c.Create(context.Background(), "s", bgapi.NewTask{Get: &bgapi.GetRequest{URL: srv.URL + "/dl/f.bin", Path: out}})
	if err != nil {
		t.Fatal(err)
	}
	if tk, err = d.c.Wait(context.Background(), tk.ID); err != nil || tk.State != bgapi.Done {
		t.Fatalf("task %+v, %v", tk, err)
	}
	if want := filepath.Join(out, "f.bin"); tk.Result.Path != want || ferrytest.FileSHA256(t, want) != srv.SHA256() {
		t.Errorf("result at %q, want %q", tk.Result.Path, want)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 {
		t.Errorf("left in the directory: %v", entries)
	}
}
