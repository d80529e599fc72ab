// Package atomicfile commits files so that a crash at any moment leaves either
// the old content or the new one under the final name, never a torn file.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile writes data to a temporary file in filename's directory, fsyncs
// it, renames it over filename and fsyncs the directory so the rename itself
// survives a power loss.
func WriteFile(filename string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(filename)
	f, err := os.CreateTemp(dir, "."+filepath.Base(filename)+".tmp*")
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
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filename); err != nil {
		return err
	}
	return SyncDir(dir)
}

// Commit fsyncs f, closes it and renames it to filename, then fsyncs the
// directory. f must live in filename's directory.
func Commit(f *os.File, filename string) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filename); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(filename))
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
