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

// resolve returns name below the root with every symbolic link replaced by
// what it points to, refusing (with errHidden) a name that passes through
// a state directory or an element hidden by name, and returns the Lstat of
// what it names. Links are followed as the root follows them: relative
// to the directory holding them, never above the root and never to an
// absolute path.
func (s *Server) resolve(name string) (string, fs.FileInfo, error) {
	hidden := s.hiddenDirs()
	var done []string
	todo := strings.Split(name, "/")
	links := 0
	var fi fs.FileInfo
	for len(todo) > 0 {
		elem := todo[0]
		todo = todo[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", nil, errEscape
			}
			done, fi = done[:len(done)-1], nil // a directory
			continue
		}
		if s.hiddenName(elem) {
			return "", nil, errHidden
		}
		p := path.Join(path.Join(done...), elem)
		var err error
		if fi, err = s.root.Lstat(p); err != nil {
			return "", nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxLinks {
				return "", nil, syscall.ELOOP
			}
			target, err := s.root.Readlink(p)
			if err != nil {
				return "", nil, err
			}
			target = filepath.ToSlash(target)
			if path.IsAbs(target) || filepath.IsAbs(target) {
				return "", nil, errEscape
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		}
		done = append(done, elem)
		if fi.IsDir() {
			if isOneOf(fi, hidden) {
				return "", nil, errHidden
			}
		} else if len(todo) > 0 {
			return "", nil, syscall.ENOTDIR
		}
	}
	if fi == nil {
		return "", nil, fs.ErrNotExist // a directory, or the root itself
	}
	return path.Join(done...), fi, nil
}

// errEscape reports a link that leads out of the root; it is answered like
// a missing file.
var errEscape = errors.New("server: path escapes the root")
