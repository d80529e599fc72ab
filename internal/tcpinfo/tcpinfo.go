// Package tcpinfo reads the kernel's account of a TCP connection: its round
// trip and how many packets arrived out of order, which on a receiver means
// packets were lost (or reordered) on their way. It also sets how much a
// connection gathers before a reader waiting on it wakes up.
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
	if c = unwrap(c); c == nil {
		return Info{}, false
	}
	return get(c)
}

// SetRecvLowat sets c's receive low-water mark (SO_RCVLOWAT): a reader
// waiting for data is woken once n bytes are there, or the peer closed,
// rather than at every packet; a read still returns what has arrived. n
// must not exceed what the peer is sure to send, or the reader waits for
// bytes that never come. ok is false where the system does not support it.
func SetRecvLowat(c net.Conn, n int) (ok bool) {
	if c = unwrap(c); c == nil {
		return false
	}
	return setRecvLowat(c, max(n, 1))
}

// unwrap returns the connection under TLS.
func unwrap(c net.Conn) net.Conn {
	for c != nil {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	return c
}
