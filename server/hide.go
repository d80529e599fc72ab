package server

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// The static origin hides what is not the operator's to publish, answering
// it like a missing file (404):
//
//   - ferry's state directories: Uploads, Streams and Config.Hide. They
//     are recognised by identity (os.SameFile: device and inode on Unix),
//     not by name, so a link inside the root, a bind mount or another
//     spelling of the path does not reveal them. Every directory a request
//     passes through is compared, including those a symbolic link leads
//     to; the links are resolved the way the root resolves them.
//   - ferry's work files, whatever the settings: a download's data and
//     control files (NAME.part, NAME.ferry) and temporary files
//     (.NAME.tmp*), which hold unverified bytes and URLs.
//   - dot files and dot directories (.git, .env, .ssh, ~/.local/state),
//     unless Config.ServeDotFiles.

// errHidden answers a request for something the origin does not serve.
var errHidden = fs.ErrNotExist

// maxLinks bounds the symbolic links one lookup follows, as the kernel's
// own limit does (ELOOP).
const maxLinks = 40

// stateDirs lists the absolute paths of the directories never served.
func stateDirs(cfg Config) []string {
	var dirs []string
	for _, d := range append([]string{cfg.Uploads, cfg.Streams}, cfg.Hide...) {
		if d == "" {
			continue
		}
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// hiddenDirs returns the state directories that exist now, by identity.
// They are looked up on every request: one may be created (Streams, with
// the first stream) or replaced while the server runs.
func (s *Server) hiddenDirs() []fs.FileInfo {
	var fis []fs.FileInfo
	for _, d := range s.hide {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			fis = append(fis, fi)
		}
	}
	return fis
}

// checkRoot refuses a root that is a state directory or inside one.
func checkRoot(root string, hide []string) error {
	dir, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	var hidden []fs.FileInfo
	for _, d := range hide {
		if fi, err := os.Stat(d); err == nil {
			hidden = append(hidden, fi)
		}
	}
	for {
		if fi, err := os.Stat(dir); err == nil && isOneOf(fi, hidden) {
			return ErrRootInState
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

func isOneOf(fi fs.FileInfo, set []fs.FileInfo) bool {
	for _, h := range set {
		if os.SameFile(fi, h) {
			return true
		}
	}
	return false
}

// isWorkFile reports the names ferry gives files it is still writing.
func isWorkFile(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasSuffix(lower, ".part") || strings.HasSuffix(lower, ".ferry") ||
		strings.HasPrefix(name, ".") && strings.Contains(lower, ".tmp")
}

// hiddenName reports whether a path element is never served by name.
func (s *Server) hiddenName(elem string) bool {
	return isWorkFile(elem) || !s.dotFiles && strings.HasPrefix(elem, ".")
}

// openServed opens name below the root for a client: a regular file that
// is not hidden. It walks name one element at a time from the root, as the
// root itself would, following symbolic links relative to the directory
// holding them, never above the root and never to an absolute path; every
// element it meets on the way, in name or in a link, is checked against
// the names never served, and every directory against the state
// directories. The file is opened in the directory the walk reached and
// checked to be the one it looked at. The walk costs a few system calls per
// element, however deep name is.
func (s *Server) openServed(name string) (*os.File, fs.FileInfo, error) {
	w := &walk{root: s.root, dir: s.root, hidden: s.hiddenDirs()}
	defer w.close()
	todo := strings.Split(name, "/")
	for links := 0; len(todo) > 0; {
		elem := todo[0]
		todo = todo[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			if err := w.up(); err != nil {
				return nil, nil, err
			}
			continue
		}
		if s.hiddenName(elem) {
			return nil, nil, errHidden
		}
		dir, err := w.current()
		if err != nil {
			return nil, nil, err
		}
		fi, err := dir.Lstat(elem)
		switch {
		case err != nil:
			return nil, nil, err
		case fi.Mode()&fs.ModeSymlink != 0:
			if links++; links > maxLinks {
				return nil, nil, syscall.ELOOP
			}
			target, err := dir.Readlink(elem)
			if err != nil {
				return nil, nil, err
			}
			if target = filepath.ToSlash(target); path.IsAbs(target) || filepath.IsAbs(target) {
				return nil, nil, errEscape
			}
			todo = append(strings.Split(target, "/"), todo...)
		case fi.IsDir():
			if isOneOf(fi, w.hidden) {
				return nil, nil, errHidden
			}
			if err := w.down(elem, fi); err != nil {
				return nil, nil, err
			}
		case len(todo) > 0:
			return nil, nil, syscall.ENOTDIR
		case !fi.Mode().IsRegular():
			return nil, nil, fs.ErrNotExist // opening a FIFO or a device could block or have effects
		default:
			return openSame(dir, elem, fi)
		}
	}
	return nil, nil, fs.ErrNotExist // a directory, or the root itself
}

// openSame opens elem in dir and returns it only if it is still the regular
// file seen before (not replaced in between).
func openSame(dir *os.Root, elem string, seen fs.FileInfo) (*os.File, fs.FileInfo, error) {
	f, err := dir.Open(elem)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !os.SameFile(fi, seen) {
		f.Close()
		if err == nil {
			err = fs.ErrNotExist
		}
		return nil, nil, err
	}
	return f, fi, nil
}

// walk is where openServed has got to: a directory below the root, open,
// and its path from the root.
type walk struct {
	root   *os.Root
	dir    *os.Root // nil after going up: reopened from root when needed
	path   []string
	hidden []fs.FileInfo
}

// current returns the directory reached.
func (w *walk) current() (*os.Root, error) {
	if w.dir == nil {
		d, err := w.root.OpenRoot(path.Join(append([]string{"."}, w.path...)...))
		if err != nil {
			return nil, err
		}
		w.dir = d
	}
	return w.dir, nil
}

// down enters the directory elem of the current one, which must still be
// the one seen.
func (w *walk) down(elem string, seen fs.FileInfo) error {
	d, err := w.dir.OpenRoot(elem)
	if err != nil {
		return err
	}
	if fi, err := d.Stat("."); err != nil || !os.SameFile(fi, seen) {
		d.Close()
		return fs.ErrNotExist // replaced while it was looked at
	}
	w.close()
	w.dir, w.path = d, append(w.path, elem)
	return nil
}

// up goes back to the parent directory. Only a link's target says "..",
// and at most maxLinks of them are followed, so the reopening it costs is
// bounded.
func (w *walk) up() error {
	if len(w.path) == 0 {
		return errEscape
	}
	w.close()
	w.dir, w.path = nil, w.path[:len(w.path)-1]
	return nil
}

// close closes the current directory unless it is the root.
func (w *walk) close() {
	if w.dir != nil && w.dir != w.root {
		w.dir.Close()
	}
}

// errEscape reports a link that leads out of the root; it is answered like
// a missing file.
var errEscape = errors.New("server: path escapes the root")
