//go:build !(linux || darwin || freebsd)

package server

// diskSpace cannot tell the free space here.
func diskSpace(dir string) (free, size int64, ok bool) { return 0, 0, false }
