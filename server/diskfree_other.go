//go:build !(linux || darwin || freebsd)

package server

// diskFree cannot tell the free space here.
func diskFree(dir string) (int64, bool) { return 0, false }
