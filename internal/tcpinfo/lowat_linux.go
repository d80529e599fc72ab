package tcpinfo

import (
	"net"

	"golang.org/x/sys/unix"
)

func setRecvLowat(c net.Conn, n int) bool {
	var err error
	ok := control(c, func(fd int) {
		// A mark over half the receive buffer makes Linux clamp the
		// window to it; a quarter keeps well clear (SO_RCVBUF reads back
		// twice the size asked for, bookkeeping included).
		if buf, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil && buf > 0 {
			n = max(1, min(n, buf/4))
		}
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT, n)
	})
	return ok && err == nil
}
