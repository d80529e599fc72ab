// Package tcpinfo reads the kernel's account of a TCP connection: its round
// trip and how many packets arrived out of order, which on a receiver means
// packets were lost (or reordered) on their way.
package tcpinfo

import (
	"net"
	"time"
)

// Info is a snapshot of one connection's counters.
type Info struct {
	// RTT is the receiver's current estimate of the round trip, queues
	// included; MinRTT the least the connection has seen.
	RTT, MinRTT time.Duration
	// SegsIn counts segments received, OutOfOrder those that arrived
	// ahead of a missing one. Both wrap at 2^32; subtract as uint32.
	SegsIn, OutOfOrder uint32
}

// Get returns c's counters; ok is false where the system does not tell
// (another OS, a connection that is not TCP, a closed one).
func Get(c net.Conn) (info Info, ok bool) {
	for c != nil {
		if u, isWrapped := c.(interface{ NetConn() net.Conn }); isWrapped {
			c = u.NetConn() // TLS
			continue
		}
		break
	}
	if c == nil {
		return Info{}, false
	}
	return get(c)
}
