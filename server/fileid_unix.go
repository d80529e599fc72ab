//go:build unix

package server

import (
	"io/fs"
	"syscall"
)

// fileID returns the device and inode numbers of the file fi describes.
func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

// changeTime returns the file's status change time (ctime) in nanoseconds
// since the epoch, or 0 when fi does not tell it. Every write, truncation,
// chmod and utimes moves it to the current time, and no call sets it to a
// chosen value, so a rewrite that restores the size and the modification
// time still shows here.
func changeTime(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return statCtime(st)
	}
	return 0
}
