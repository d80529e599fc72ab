//go:build !linux && !darwin && !freebsd

package bgapi

const peerKnown = false

func peerUID(int) (int, error) { return 0, errPeerUnknown }
