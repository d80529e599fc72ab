package bgapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrUnsafe reports a state directory or socket path that other users
// could tamper with: the daemon refuses to run there rather than let them
// reach its journal or its API (as ssh refuses loose key files).
var ErrUnsafe = errors.New("ferry: unsafe path")

// UnsafeError is ErrUnsafe with the path and what is wrong with it. Its
// fields are those of the library's unsafe-file error (ferry.UnsafeFileError).
type UnsafeError struct {
	Path string
	What string // "is writable by others (mode 0777): ...", "belongs to uid 1001, ..."
}

func (e *UnsafeError) Error() string {
	return fmt.Sprintf("ferry: refusing %s: it %s", e.Path, e.What)
}

func (e *UnsafeError) Unwrap() error { return ErrUnsafe }

// PrivateDir makes dir (creating it and its parents) a directory that only
// uid can enter: it must be uid's, not a link another user planted, and not
// writable by anyone else (refused: what is inside may already have been
// tampered with); one merely readable by others is tightened to 0700.
func PrivateDir(dir string, uid int) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if owner := Owner(fi); owner != uid {
			return &UnsafeError{Path: dir, What: fmt.Sprintf("is a symbolic link owned by uid %d, not by uid %d", owner, uid)}
		}
		if fi, err = os.Stat(dir); err != nil {
			return err
		}
	}
	switch owner := Owner(fi); {
	case !fi.IsDir():
		return &UnsafeError{Path: dir, What: "is not a directory"}
	case owner != uid:
		return &UnsafeError{Path: dir, What: fmt.Sprintf("belongs to uid %d, not to uid %d", owner, uid)}
	case fi.Mode().Perm()&0o022 != 0:
		return &UnsafeError{Path: dir, What: fmt.Sprintf("is writable by others (mode %04o): what is in it may have been replaced; check it, then chmod 700 it", fi.Mode().Perm())}
	case fi.Mode().Perm() != 0o700:
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("ferry: making %s private: %w", dir, err)
		}
	}
	return nil
}
