package tcpinfo

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func get(c net.Conn) (Info, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Info{}, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Info{}, false
	}
	var ti *unix.TCPInfo
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		ti, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return Info{}, false
	}
	return Info{
		RTT:        time.Duration(ti.Rcv_rtt) * time.Microsecond,
		MinRTT:     time.Duration(ti.Min_rtt) * time.Microsecond,
		SegsIn:     ti.Segs_in,
		OutOfOrder: ti.Rcv_ooopack,
	}, true
}
