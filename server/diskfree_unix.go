//go:build linux || darwin || freebsd

package server

import "syscall"

// diskSpace returns the bytes an unprivileged process may still write on
// the file system holding dir, and the file system's size.
func diskSpace(dir string) (free, size int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), int64(uint64(st.Blocks) * uint64(st.Bsize)), true
}
