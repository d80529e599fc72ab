//go:build darwin || freebsd

package bgapi

import "golang.org/x/sys/unix"

const peerKnown = true

func peerUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, 0 /* SOL_LOCAL */, unix.LOCAL_PEERCRED)
	if err != nil {
		return 0, err
	}
	return int(cred.Uid), nil
}
