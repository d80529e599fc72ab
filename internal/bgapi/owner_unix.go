//go:build unix

package bgapi

import (
	"io/fs"
	"syscall"
)

// Owner is the uid owning the file fi describes (-1 if the system does
// not say).
func Owner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
