//go:build aix || dragonfly || hurd || illumos || linux || openbsd || solaris

package server

import "syscall"

func statCtime(st *syscall.Stat_t) int64 {
	return int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec)
}
