// Package atomicfile is where ferry creates, opens and replaces files, so
// that every name it touches follows the same rules:
//
//   - A crash at any moment leaves the old content or the new one under a
//     final name, never a torn file: write a temporary file, fsync, rename,
//     fsync the directory.
//   - No symbolic link is followed and no file is written that ferry could
//     not have created itself: files are opened with O_NOFOLLOW, created
//     with O_EXCL, and the opened descriptor is checked to be a regular file
//     with one link, owned by the effective user (a check of the name
//     before the open would race with whoever can change the directory).
//   - Only a regular file, or nothing, is ever renamed over.
//   - A file made for the user is created 0666 less the umask ([Public]);
//     state that may hold secrets, such as a URL with a token, 0600
//     ([Private]).
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Permissions of the files ferry creates; the umask applies to both.
const (
	Public  os.FileMode = 0o666 // what becomes the user's file
	Private os.FileMode = 0o600 // control and state files
)

// ErrUnsafe is what every *UnsafeError matches.
var ErrUnsafe = errors.New("ferry: refusing a file ferry could not have created")

// UnsafeError reports a name that holds something ferry does not write,
// replace or read as its own: a symbolic link, a directory, a device, a FIFO
// or socket where a regular file belongs, a file with other hard links, or
// one owned by another user.
type UnsafeError struct {
	Path string
	What string // "is a symbolic link", "has 2 hard links", ...
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("ferry: %s %s; ferry neither follows nor replaces such a file: remove it or choose another name", e.Path, e.What)
}

// Unwrap makes an UnsafeError match ErrUnsafe.
func (e *UnsafeError) Unwrap() error { return ErrUnsafe }

// Open opens name with flag (os.O_RDWR|os.O_CREATE, os.O_RDONLY, ...) and
// perm, never through a symbolic link, and only if what it opened is a
// regular file with one link that the effective user owns. It does not
// block on a FIFO.
func Open(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
	if err != nil {
		return nil, describe(name, err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = check(name, fi, os.Geteuid())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// describe turns the error of opening name into an *UnsafeError when what
// is there made the open fail (a link under O_NOFOLLOW, a directory, a FIFO
// without a reader).
func describe(name string, err error) error {
	if !errors.Is(err, syscall.ELOOP) && !errors.Is(err, syscall.EISDIR) && !errors.Is(err, syscall.ENXIO) &&
		!errors.Is(err, syscall.EOPNOTSUPP) {
		return err
	}
	if fi, lerr := os.Lstat(name); lerr == nil {
		return &UnsafeError{Path: name, What: "is " + kind(fi.Mode())}
	}
	return err
}

// check refuses fi, the opened file at name, unless it is a regular file
// with one link that euid owns.
func check(name string, fi os.FileInfo, euid int) error {
	if !fi.Mode().IsRegular() {
		return &UnsafeError{Path: name, What: "is " + kind(fi.Mode())}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Nlink > 1 {
		return &UnsafeError{Path: name, What: fmt.Sprintf("has %d hard links", st.Nlink)}
	}
	if int(st.Uid) != euid {
		return &UnsafeError{Path: name, What: fmt.Sprintf("is owned by user %d, not by this one (%d)", st.Uid, euid)}
	}
	return nil
}

// kind names a file mode for an error message.
func kind(m os.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a regular file"
}

// ReadFile reads name through Open, refusing a file larger than limit.
func ReadFile(name string, limit int64) ([]byte, error) {
	f, err := Open(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("ferry: %s is larger than %d bytes", name, limit)
	}
	return b, nil
}

// CreateTemp creates a new file in dir named prefix and random digits, with
// perm (less the umask), opened for reading and writing. Nothing that was
// there before is ever opened: the name is created with O_EXCL.
func CreateTemp(dir, prefix string, perm os.FileMode) (*os.File, error) {
	for range 1000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := Open(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: fs.ErrExist}
}

// tempPrefix is the prefix of the temporary files CreateTempFor makes for
// filename.
func tempPrefix(filename string) string { return "." + filepath.Base(filename) + ".tmp" }

// CreateTempFor creates the temporary file that will become filename (see
// Commit), hidden in filename's directory, with perm less the umask;
// RemoveTemps finds what a killed writer left of it.
func CreateTempFor(filename string, perm os.FileMode) (*os.File, error) {
	return CreateTemp(filepath.Dir(filename), tempPrefix(filename), perm)
}

// WriteFile writes data to a temporary file in filename's directory, fsyncs
// it, renames it over filename and fsyncs the directory so the rename itself
// survives a power loss. The file is created with perm less the umask.
func WriteFile(filename string, data []byte, perm os.FileMode) (err error) {
	f, err := CreateTempFor(filename, perm)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = Rename(tmp, filename); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(filename))
}

// RemoveTemps deletes the temporary files of filename (CreateTempFor)
// that a writer killed before its rename left, of those at least minAge
// old: a younger one may be another writer's in flight, unless the caller
// holds filename for itself (minAge 0).
func RemoveTemps(filename string, minAge time.Duration) {
	prefix := tempPrefix(filename)
	names, _ := filepath.Glob(filepath.Join(filepath.Dir(filename), GlobEscape(prefix)+"*"))
	for _, name := range names {
		if _, err := strconv.ParseUint(filepath.Base(name)[len(prefix):], 10, 32); err != nil {
			continue
		}
		if fi, err := os.Lstat(name); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) >= minAge {
			os.Remove(name)
		}
	}
}

// GlobEscape quotes the characters filepath.Match treats specially, so
// that a pattern made from a file's name matches that name only (on
// systems whose path separator is not a backslash).
func GlobEscape(s string) string {
	var b []byte
	for i := range len(s) {
		switch s[i] {
		case '*', '?', '[', '\\':
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// Commit fsyncs f, closes it and renames it to filename (see Rename), then
// fsyncs the directory. f must live in filename's directory. On an error f
// is closed and left where it is.
func Commit(f *os.File, filename string) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := Rename(f.Name(), filename); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(filename))
}

// Rename moves oldpath to newpath, replacing only a regular file or
// nothing: a link, a directory or a device at newpath is an *UnsafeError
// and stays as it is. (rename(2) replaces the name, never writes through
// it, so a link planted after the check is itself replaced, its target
// untouched.)
func Rename(oldpath, newpath string) error {
	if err := CheckReplace(newpath); err != nil {
		return err
	}
	return os.Rename(oldpath, newpath)
}

// CheckReplace reports whether name holds nothing or a regular file, the
// only things ferry puts a file in place of.
func CheckReplace(name string) error {
	fi, err := os.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &UnsafeError{Path: name, What: "is " + kind(fi.Mode())}
	}
	return nil
}

// SyncDir fsyncs a directory so that entries created or renamed in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
