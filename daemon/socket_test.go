package daemon

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// errStarted is what tryStart reports for a daemon that came up.
var errStarted = errors.New("the daemon started")

// quietConfig is a daemon with state in state and its socket at socket.
func quietConfig(state, socket string) Config {
	return Config{StateDir: state, Socket: socket, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// tryStart runs a daemon and stops it as soon as it is ready: errStarted,
// or why it refused to start.
func tryStart(t *testing.T, cfg Config) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	then := cfg.Ready
	cfg.Ready = func() {
		if then != nil {
			then()
		}
		close(ready)
	}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	select {
	case err := <-done:
		return err
	case <-ready:
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stopping the daemon: %v", err)
		}
		return errStarted
	case <-time.After(testTimeout):
		t.Fatal("the daemon neither started nor refused")
		return nil
	}
}

// shortDir is a directory for sockets, whose paths must be short.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func wantUnsafe(t *testing.T, err error, about string) {
	t.Helper()
	var ue *UnsafeError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), about) {
		t.Fatalf("got %v, want an UnsafeError about %q", err, about)
	}
}

// A state directory others may write in is refused: what is in it may
// have been tampered with. One they may only read is made private.
func TestStateDirPermissions(t *testing.T) {
	for _, perm := range []fs.FileMode{0o777, 0o770, 0o702} {
		state := t.TempDir()
		if err := os.Chmod(state, perm); err != nil {
			t.Fatal(err)
		}
		wantUnsafe(t, tryStart(t, quietConfig(state, filepath.Join(shortDir(t), "d.sock"))), "writable by others")
	}
	state := t.TempDir()
	os.Chmod(state, 0o755)
	if err := tryStart(t, quietConfig(state, filepath.Join(shortDir(t), "d.sock"))); err != errStarted {
		t.Fatal(err)
	}
	if m := mode(t, state).Perm(); m != 0o700 {
		t.Errorf("state directory left %04o, want 0700", m)
	}
	// A new one (and its parents) is private from the start, whatever
	// the umask.
	defer umask(0)()
	fresh := filepath.Join(t.TempDir(), "a", "state")
	if err := tryStart(t, quietConfig(fresh, filepath.Join(shortDir(t), "d.sock"))); err != errStarted {
		t.Fatal(err)
	}
	if m := mode(t, fresh).Perm(); m != 0o700 {
		t.Errorf("new state directory %04o, want 0700", m)
	}
}

// The state directory and the socket's directory must be the user's: one
// of another user, or a link another user planted, is refused. (The
// daemon is told it serves another uid, so that what this test creates
// is another user's.)
func TestStateDirOfAnotherUser(t *testing.T) {
	other := os.Geteuid() + 4242
	cfg := quietConfig(t.TempDir(), filepath.Join(shortDir(t), "d.sock"))
	cfg.user = &other
	wantUnsafe(t, tryStart(t, cfg), "belongs to uid")

	target := t.TempDir()
	link := filepath.Join(t.TempDir(), "state")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	cfg = quietConfig(link, filepath.Join(shortDir(t), "d.sock"))
	cfg.user = &other
	wantUnsafe(t, tryStart(t, cfg), "symbolic link owned by uid")
	// The user's own link to their own directory is theirs to make.
	if err := tryStart(t, quietConfig(link, filepath.Join(shortDir(t), "d.sock"))); err != errStarted {
		t.Fatal(err)
	}
}

// Whatever sits at the socket path and is not a stale socket of the user's
// stays where it is, and the daemon does not start.
func TestSocketPathTaken(t *testing.T) {
	dir := shortDir(t)
	file := filepath.Join(dir, "d.sock")
	os.WriteFile(file, []byte("not ferry's"), 0o600)
	wantUnsafe(t, tryStart(t, quietConfig(t.TempDir(), file)), "not a socket")
	if b, err := os.ReadFile(file); err != nil || string(b) != "not ferry's" {
		t.Fatalf("the file at the socket path: %q %v", b, err)
	}
	link := filepath.Join(dir, "l.sock")
	os.Symlink(file, link)
	wantUnsafe(t, tryStart(t, quietConfig(t.TempDir(), link)), "not a socket")

	// A socket of ours that nobody answers on is a killed daemon's: it
	// is replaced.
	stale := staleSocket(t, filepath.Join(dir, "s.sock"))
	if err := tryStart(t, quietConfig(t.TempDir(), stale)); err != errStarted {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the daemon left its socket: %v", err)
	}

	// One that answers is another daemon's.
	live, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := tryStart(t, quietConfig(t.TempDir(), stale)); !errors.Is(err, ErrRunning) {
		t.Fatalf("got %v, want ErrRunning", err)
	}
}

// A stale socket of another user is not the daemon's to replace.
func TestSocketOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		needRoot(t, "needs root to create a socket file of another user; TestStateDirOfAnotherUser covers ownership with an injected uid")
	}
	sock := staleSocket(t, filepath.Join(shortDir(t), "d.sock"))
	if err := os.Lchown(sock, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	wantUnsafe(t, tryStart(t, quietConfig(t.TempDir(), sock)), "a socket of uid 4242")
}

// A socket in a shared directory like /tmp is created private: mode 0600
// from the moment it has its name, and nothing is left beside it. A
// shared directory that is not sticky is refused: others could replace
// the socket.
func TestSocketInSharedDir(t *testing.T) {
	state := t.TempDir()
	defer umask(0)()
	shared := shortDir(t)
	os.Chmod(shared, 0o777|fs.ModeSticky)
	sock := filepath.Join(shared, "d.sock")
	cfg := quietConfig(state, sock)
	var m fs.FileMode
	cfg.Ready = func() { m = mode(t, sock) }
	if err := tryStart(t, cfg); err != errStarted {
		t.Fatal(err)
	}
	if m.Type() != fs.ModeSocket || m.Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", m)
	}
	if left, _ := os.ReadDir(shared); len(left) != 0 {
		t.Errorf("left in the shared directory: %v", left)
	}

	loose := shortDir(t)
	os.Chmod(loose, 0o777)
	wantUnsafe(t, tryStart(t, quietConfig(state, filepath.Join(loose, "d.sock"))), "not sticky")
}

// Connections from another user are closed before a byte is read.
func TestPeerOfAnotherUser(t *testing.T) {
	sock := filepath.Join(shortDir(t), "d.sock")
	other := os.Geteuid() + 4242
	cfg := quietConfig(t.TempDir(), sock)
	cfg.peer = &other
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	cfg.Ready = func() { close(ready) }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	await(t, ready, "daemon")
	for range 3 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: ferry\r\nConnection: close\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(testTimeout))
		if b, _ := io.ReadAll(c); len(b) != 0 { // an EOF or a reset
			t.Errorf("another user got %q", b)
		}
		c.Close()
	}
	c := bgapi.NewClient(sock)
	defer c.Close()
	if _, err := c.Health(ctx); err == nil {
		t.Error("a client of another user was answered")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// staleSocket leaves a socket at path that nobody answers on, as a killed
// daemon does.
func staleSocket(t *testing.T, path string) string {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	return path
}

// umask sets the process's umask (no test here runs in parallel) and
// returns what puts it back.
func umask(m int) func() {
	old := syscall.Umask(m)
	return func() { syscall.Umask(old) }
}
