package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// ErrUnsafe reports a state directory or socket path that other users
// could tamper with (bgapi.ErrUnsafe).
var ErrUnsafe = bgapi.ErrUnsafe

// UnsafeError is ErrUnsafe with the path and what is wrong with it: Path
// is the state directory, the socket path or the socket's directory
// refused, and What says what is wrong with it ("is writable by others
// (mode 0777): ...", "holds a socket of uid 1001"), as in the library's
// ferry.UnsafeFileError. errors.Is(err, ErrUnsafe) holds for it.
type UnsafeError = bgapi.UnsafeError

// maxSocketPath is the longest path a unix socket address holds.
const maxSocketPath = 107

// sharedDir checks the directory of a socket that is not in a private
// one, such as /tmp: it must be uid's or root's, and if others may write
// in it, sticky (so that they cannot rename or remove what is ours).
func sharedDir(dir string, uid int) (private bool, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return false, err
	}
	perm, owner := fi.Mode().Perm(), bgapi.Owner(fi)
	switch {
	case !fi.IsDir():
		return false, &UnsafeError{Path: dir, What: "is not a directory"}
	case owner != uid && owner != 0:
		return false, &UnsafeError{Path: dir, What: fmt.Sprintf("belongs to uid %d: they could replace the socket", owner)}
	case perm&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0:
		return false, &UnsafeError{Path: dir, What: fmt.Sprintf("is shared: others may rename and replace what is in it (mode %04o, not sticky)", perm)}
	}
	return owner == uid && perm&0o077 == 0, nil
}

// listen opens the API socket for uid. In a private directory the socket
// is created in place; in a shared one it is created in a private
// directory of its own and renamed into place, so that it is never
// reachable before its mode is 0600. A socket left by a killed daemon is
// replaced only if it is a socket of uid's that nobody answers on; anything
// else at the path is refused. Connections from other users are closed
// unanswered.
func listen(socket string, uid, peer int, log *slog.Logger) (*peerListener, error) {
	if len(socket) > maxSocketPath {
		return nil, fmt.Errorf("ferry daemon: socket path %q is longer than a unix socket allows (%d bytes)", socket, maxSocketPath)
	}
	dir := filepath.Dir(socket)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	private, err := sharedDir(dir, uid)
	if err != nil {
		return nil, err
	}
	if err := checkStale(socket, uid); err != nil {
		return nil, err
	}
	var ln *net.UnixListener
	if private {
		os.Remove(socket) // a stale socket of ours, if any
		ln, err = bindPrivate(socket)
	} else {
		ln, err = bindShared(socket)
	}
	if err != nil {
		return nil, err
	}
	fi, err := os.Lstat(socket)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &peerListener{UnixListener: ln, uid: peer, path: socket, file: fi, log: log}, nil
}

// checkStale refuses a socket path holding anything but a socket of uid's
// that nobody answers on.
func checkStale(socket string, uid int) error {
	fi, err := os.Lstat(socket)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return &UnsafeError{Path: socket, What: fmt.Sprintf("holds something that is not a socket (%s): ferry did not create it; remove it or choose another --socket", fi.Mode().Type())}
	}
	if owner := bgapi.Owner(fi); owner != uid {
		return &UnsafeError{Path: socket, What: fmt.Sprintf("holds a socket of uid %d", owner)}
	}
	if c, err := net.DialTimeout("unix", socket, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%w on %s", ErrRunning, socket)
	}
	return nil
}

// bindPrivate creates the socket in a directory only we can enter, and
// gives it mode 0600 before anyone could reach it anyway.
func bindPrivate(socket string) (*net.UnixListener, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("ferry daemon: making %s private: %w", socket, err)
	}
	ln.SetUnlinkOnClose(false) // Run removes it, if it is still ours
	return ln, nil
}

// bindShared creates the socket in a private directory beside its path,
// makes it 0600, and renames it into place.
func bindShared(socket string) (*net.UnixListener, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(socket), ".ferry-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o700); err != nil { // whatever the umask made it
		return nil, err
	}
	name := filepath.Join(tmp, "s")
	if len(name) > maxSocketPath {
		return nil, fmt.Errorf("ferry daemon: socket path %q is too long to be created safely in a shared directory", socket)
	}
	ln, err := bindPrivate(name)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(name, socket); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// peerListener accepts only connections from its user's processes.
type peerListener struct {
	*net.UnixListener
	uid     int
	path    string
	file    fs.FileInfo // the socket as created, to remove only that
	log     *slog.Logger
	refused int // connections closed unanswered (Accept's goroutine only)
}

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.UnixListener.Accept()
		if err != nil || !bgapi.KnowsPeers() {
			return c, err // elsewhere the socket's mode alone keeps others out
		}
		uid, err := bgapi.PeerUID(c)
		if err == nil && uid == l.uid {
			return c, nil
		}
		c.Close()
		l.refused++
		if l.refused&(l.refused-1) == 0 { // the 1st, 2nd, 4th, ...: a flood does not flood the log
			l.log.Warn("refused a connection from another user", "uid", uid, "err", err, "refused", l.refused)
		}
	}
}

// close closes the listener and deletes the socket, if it is still the
// one this listener created.
func (l *peerListener) close() {
	l.Close()
	if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.file) {
		os.Remove(l.path)
	}
}
