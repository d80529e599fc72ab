package tcpinfo

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

func setRecvLowat(c net.Conn, n int) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		// A mark over half the receive buffer makes Linux clamp the
		// window to it; a quarter keeps well clear (SO_RCVBUF reads back
		// twice the size asked for, bookkeeping included).
		if buf, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil && buf > 0 {
			n = max(1, min(n, buf/4))
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, n)
	}); err != nil || serr != nil {
		return false
	}
	return true
}
