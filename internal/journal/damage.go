package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/internal/atomicfile"
)

// ErrDamaged reports a journal file that cannot be trusted: empty,
// truncated, with pages that are not what they should be, or with records
// that do not decode. Open sets such a file aside and refuses to start
// over it; Recover keeps what is readable from it.
var ErrDamaged = errors.New("journal: damaged")

// DamagedError is ErrDamaged with what was found.
type DamagedError struct {
	Path   string // the journal
	Reason string // what is wrong
	// SetAside is where the damaged file now is ("" if it was not moved:
	// found damaged while in use, or awaiting recovery already).
	SetAside string
}

func (e *DamagedError) Error() string {
	s := fmt.Sprintf("journal: %s is damaged: %s", e.Path, e.Reason)
	if e.SetAside != "" {
		s += "; it was moved to " + e.SetAside
	}
	return s
}

func (e *DamagedError) Unwrap() error { return ErrDamaged }

// damagedSuffix names a damaged journal set aside: PATH.damaged-TIME.
const damagedSuffix = ".damaged-"

// DamagedCopies lists the damaged journals set aside beside path, oldest
// first.
func DamagedCopies(path string) ([]string, error) {
	m, err := filepath.Glob(atomicfile.GlobEscape(path) + damagedSuffix + "*")
	slices.Sort(m) // the names end in a sortable time
	return m, err
}

// setAside renames the damaged journal at path to PATH.damaged-TIME (a
// name not taken) and returns that name.
func setAside(path string) (string, error) {
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for i := 0; i < 100; i++ {
		name := path + damagedSuffix + stamp
		if i > 0 {
			name += fmt.Sprintf("-%02d", i)
		}
		if _, err := os.Lstat(name); err == nil {
			continue
		}
		if err := os.Rename(path, name); err != nil {
			return "", err
		}
		return name, atomicfile.SyncDir(filepath.Dir(path))
	}
	return "", fmt.Errorf("journal: no free name to set %s aside", path)
}

// lockFile takes the exclusive lock bbolt takes (flock), waiting at most
// lockTimeout, so a journal in use is never read half-written.
func lockFile(f *os.File) error {
	deadline := time.Now().Add(lockTimeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s", ErrLocked, f.Name())
		}
		time.Sleep(lockTimeout / 4)
	}
}

// openLocked opens the journal file at path and locks it. It returns a nil
// file, no error, when there is none; a file set aside or replaced while
// the lock was awaited is opened again.
func openLocked(path string) (*os.File, error) {
	for try := 0; try < 10; try++ {
		f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("journal: open %s: %w", path, err)
		}
		if err := lockFile(f); err != nil {
			f.Close()
			return nil, err
		}
		fi, err1 := f.Stat()
		now, err2 := os.Lstat(path)
		if err1 == nil && err2 == nil && os.SameFile(fi, now) {
			return f, nil
		}
		f.Close() // not the journal at path any more: look again
	}
	return nil, fmt.Errorf("journal: %s keeps changing", path)
}

// checkFile reads the locked journal file f strictly.
func checkFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		// A journal that never existed is absent: a new one is created
		// elsewhere and linked into place whole.
		return errors.New("the file is empty (0 bytes)")
	}
	var c *contents
	err = guard(func() error {
		var err error
		c, err = readJournal(f, fi.Size())
		return err
	})
	if err != nil {
		return err
	}
	if string(c.version) != formatVersion {
		if _, err := strconv.ParseUint(string(c.version), 10, 16); err != nil {
			return fmt.Errorf("format version %q", c.version)
		}
		return &formatError{version: string(c.version)} // a later ferry's
	}
	return nil
}

// formatError is a journal of another format: not damaged, not ours to
// read or to set aside.
type formatError struct{ version string }

func (e *formatError) Error() string {
	return fmt.Sprintf("format version %q, want %q", e.version, formatVersion)
}

// panicError is a panic caught reading a journal.
type panicError struct{ v any }

func (e *panicError) Error() string { return fmt.Sprintf("reading it failed: %v", e.v) }

// guard runs f, turning a panic (bbolt's, on a file that changed under
// it) or a fault on the memory map into a *panicError.
func guard(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{p}
		}
	}()
	return f()
}
