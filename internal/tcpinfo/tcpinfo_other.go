//go:build !linux

package tcpinfo

import "net"

func get(net.Conn) (Info, bool) { return Info{}, false }

func setRecvLowat(net.Conn, int) bool { return false }
