package ferry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// A hostile user's plants at every name a download touches (the final
// name, the .part file, the control file), in every way of downloading:
// whatever happens, no link's target is written, nothing but a regular file
// is replaced, nothing hangs, and the outcome is the right file or a typed
// error.
func TestFileAttackMatrix(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(3<<20))
	names := map[string]func(final string) string{
		"final":   func(f string) string { return f },
		"part":    func(f string) string { return f + ".part" },
		"control": func(f string) string { return f + ".ferry" },
	}
	plants := map[string]func(t *testing.T, name, victim string){
		"symlink":          func(t *testing.T, n, v string) { must(t, os.Symlink(v, n)) },
		"dangling symlink": func(t *testing.T, n, v string) { must(t, os.Symlink(v+".nowhere", n)) },
		"hardlink":         func(t *testing.T, n, v string) { must(t, os.Link(v, n)) },
		"fifo":             func(t *testing.T, n, v string) { must(t, syscall.Mkfifo(n, 0o644)) },
		"directory":        func(t *testing.T, n, v string) { must(t, os.Mkdir(n, 0o755)) },
		"socket":           func(t *testing.T, n, v string) { must(t, syscall.Mknod(n, syscall.S_IFSOCK|0o644, 0)) },
		"read-only file":   func(t *testing.T, n, v string) { must(t, os.WriteFile(n, []byte("old"), 0o444)) },
		"another user's file": func(t *testing.T, n, v string) {
			must(t, os.WriteFile(n, []byte("old"), 0o666))
			giveAway(t, n)
		},
		"another user's fifo": func(t *testing.T, n, v string) {
			must(t, syscall.Mkfifo(n, 0o666))
			giveAway(t, n)
		},
		"another user's symlink": func(t *testing.T, n, v string) {
			must(t, os.Symlink(filepath.Dir(v), n))
			giveAway(t, n)
		},
	}
	modes := map[string]func(r *ferry.DownloadRequest, cfg *ferry.Config){
		"single":    func(r *ferry.DownloadRequest, _ *ferry.Config) { r.Connections = 1 },
		"segmented": func(r *ferry.DownloadRequest, _ *ferry.Config) { r.Connections = 4 },
		"continue":  func(r *ferry.DownloadRequest, _ *ferry.Config) { r.Continue = true },
		"keepstate": func(r *ferry.DownloadRequest, _ *ferry.Config) { r.KeepState = true },
		"ephemeral": func(_ *ferry.DownloadRequest, c *ferry.Config) { c.Ephemeral = true },
	}
	cases, refused, succeeded := 0, 0, 0
	for nameKind, nameOf := range names {
		for plantKind, plant := range plants {
			for modeKind, mode := range modes {
				cases++
				t.Run(nameKind+"/"+plantKind+"/"+modeKind, func(t *testing.T) {
					dir := t.TempDir()
					final := filepath.Join(dir, "out.bin")
					victim := filepath.Join(dir, "victim")
					must(t, os.WriteFile(victim, []byte("precious"), 0o644))
					planted := nameOf(final)
					plant(t, planted, victim)
					before, _ := os.Lstat(planted)

					cfg := testConfig(false)
					req := ferry.DownloadRequest{URL: srv.URL + "/f", Path: final, SHA256: true}
					mode(&req, &cfg)
					var reader *fifoReader
					if planted == final && before.Mode()&fs.ModeNamedPipe != 0 {
						reader = readFIFO(t, planted, srv.Size())
					}
					res, err := attempt(t, cfg, req)
					var streamed string
					if reader != nil {
						streamed = reader.result(err == nil)
					}

					if b, _ := os.ReadFile(victim); string(b) != "precious" {
						t.Errorf("the victim holds %d bytes", len(b))
					}
					if _, err := os.Lstat(victim + ".nowhere"); err == nil {
						t.Error("a dangling link's target was created")
					}
					if !before.Mode().IsRegular() {
						// Only a regular file may be replaced or removed.
						if after, err := os.Lstat(planted); err != nil || after.Mode().Type() != before.Mode().Type() {
							t.Errorf("the planted %s was replaced or removed (%v)", plantKind, err)
						}
					}
					switch {
					case err == nil:
						succeeded++
						got := streamed
						if reader == nil {
							got = ferrytest.FileSHA256(t, res.Path)
						}
						// -c vouches for the bytes of a regular file it
						// finds: those are the user's word, not checked.
						vouched := req.Continue && before.Mode().IsRegular()
						if !vouched && (res.SHA256 != srv.SHA256() || got != srv.SHA256()) {
							t.Error("success with the wrong content")
						}
					case errors.Is(err, ferry.ErrUnsafeFile) || errors.Is(err, ferry.ErrInvalidRequest) || errors.Is(err, fs.ErrPermission):
						refused++
						if fi, err := os.Lstat(final); err == nil && fi.Mode().IsRegular() && fi.Size() == srv.Size() && planted != final {
							t.Error("refused, yet a file is in place")
						}
					default:
						t.Errorf("untyped failure: %v", err)
					}
				})
			}
		}
	}
	t.Logf("%d cases: %d succeeded, %d refused with a typed error", cases, succeeded, refused)
}

// giveAway makes name another user's, as root; for anyone else it stays
// theirs (atomicfile's tests check the rule with another user's ID).
func giveAway(t *testing.T, name string) {
	if os.Geteuid() == 0 {
		must(t, os.Lchown(name, 65534, 65534))
	}
}

// fifoReader reads size bytes from a FIFO while a download writes them.
// It holds the FIFO open for reading and writing, so that neither its own
// open nor the download's waits for the other.
type fifoReader struct {
	f   *os.File
	sum chan string
}

func readFIFO(t *testing.T, name string, size int64) *fifoReader {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	must(t, err)
	r := &fifoReader{f: f, sum: make(chan string, 1)}
	go func() {
		h := sha256.New()
		io.CopyN(h, f, size)
		r.sum <- hex.EncodeToString(h.Sum(nil))
	}()
	return r
}

// result returns the digest of what was read: after all of it when the
// download succeeded, else of what there was when it ended.
func (r *fifoReader) result(succeeded bool) string {
	if !succeeded {
		r.f.Close()
	}
	sum := <-r.sum
	r.f.Close()
	return sum
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// attempt runs one download to its end within a minute, failing the test
// if it blocks; a refusal at NewDownload is returned like a failed task.
func attempt(t *testing.T, cfg ferry.Config, req ferry.DownloadRequest) (*ferry.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := mustSession(t, cfg)
	task, err := s.Download(ctx, req)
	if err != nil {
		return nil, err
	}
	res, err := task.Wait(ctx)
	if ctx.Err() != nil {
		t.Fatal("the download blocked")
	}
	return res, err
}

// Names a user can get wrong: too long, with control characters, in a
// directory that cannot be written. Each ends in the file or a clear error
// before the first request.
func TestAwkwardNames(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(64<<10))
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("l", 252)) // the .part and .ferry names exceed 255 bytes
	if _, err := attempt(t, testConfig(false), ferry.DownloadRequest{URL: srv.URL + "/f", Path: long}); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("a 252-byte name: %v, want ENAMETOOLONG", err)
	}
	ctl := filepath.Join(dir, "a\nb\x1b[31m")
	if _, err := attempt(t, testConfig(false), ferry.DownloadRequest{URL: srv.URL + "/f", Path: ctl}); err != nil {
		t.Errorf("a name the user chose with control characters: %v", err)
	}
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("%d requests, want the probe and GET of the one that ran", n)
	}

	ro := filepath.Join(dir, "ro")
	must(t, os.Mkdir(ro, 0o555))
	defer os.Chmod(ro, 0o755)
	before := len(srv.Requests())
	_, err := attempt(t, testConfig(false), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(ro, "f")})
	if os.Geteuid() == 0 {
		// Root writes whatever the mode bits say.
		if err != nil {
			t.Errorf("as root in a read-only directory: %v", err)
		}
		return
	}
	if !errors.Is(err, fs.ErrPermission) || len(srv.Requests()) != before {
		t.Errorf("a read-only directory: %v after %d requests, want a permission error before any", err, len(srv.Requests())-before)
	}
}
