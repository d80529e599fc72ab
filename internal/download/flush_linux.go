package download

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing [off, off+n) of f to disk
// without waiting for it. Spreading writeback over the download means the
// final fsync has little left to do, so durability costs almost no wall time.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// preallocate gives f its full length with real blocks, so parallel writes
// land anywhere without fragmenting the file or running out of space halfway.
func preallocate(f *os.File, size int64) error {
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err == nil {
		return nil
	}
	return f.Truncate(size) // a filesystem without fallocate: a sparse file
}
