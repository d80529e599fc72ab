package bgapi

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// ErrForeignDaemon reports a socket served by another user's process: the
// client sends nothing to it, since whoever serves it would read the
// requests (their headers may carry credentials) and could answer lies.
var ErrForeignDaemon = errors.New("ferry: the daemon socket is served by another user")

// ForeignDaemonError is ErrForeignDaemon with what was found.
type ForeignDaemonError struct {
	Socket   string
	UID, Own int // the uid serving the socket, and ours
}

func (e *ForeignDaemonError) Error() string {
	return fmt.Sprintf("ferry: %s is served by uid %d, not by you (uid %d): refusing to talk to it", e.Socket, e.UID, e.Own)
}

func (e *ForeignDaemonError) Unwrap() error { return ErrForeignDaemon }

// errPeerUnknown: the system does not tell who is on the other end.
var errPeerUnknown = errors.New("the peer's credentials are not available on this system")

// PeerUID is the uid of the process on the other end of a unix socket
// connection (SO_PEERCRED on Linux, LOCAL_PEERCRED on the BSDs): for a
// client, the one that created the daemon's socket; for the daemon, the
// one that connected.
func PeerUID(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("ferry: %T is not a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	uid := -1
	var uerr error
	if err := raw.Control(func(fd uintptr) { uid, uerr = peerUID(int(fd)) }); err != nil {
		return 0, err
	}
	return uid, uerr
}

// KnowsPeers reports whether PeerUID works on this system; where it does
// not, the socket's file mode alone keeps other users out.
func KnowsPeers() bool { return peerKnown }
