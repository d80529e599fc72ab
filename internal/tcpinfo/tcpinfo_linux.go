package tcpinfo

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func get(c net.Conn) (Info, bool) {
	var ti *unix.TCPInfo
	var err error
	if !control(c, func(fd int) { ti, err = unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO) }) || err != nil {
		return Info{}, false
	}
	return Info{
		RTT:        time.Duration(ti.Rcv_rtt) * time.Microsecond,
		MinRTT:     time.Duration(ti.Min_rtt) * time.Microsecond,
		SegsIn:     ti.Segs_in,
		OutOfOrder: ti.Rcv_ooopack,
	}, true
}

// control runs f on c's socket; false if c has none.
func control(c net.Conn, f func(fd int)) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	return raw.Control(func(fd uintptr) { f(int(fd)) }) == nil
}
