// Package clientaddr names the client a request comes from, one way for
// every bound ferry's server keeps per client.
package clientaddr

import (
	"net"
	"net/netip"
)

// Key names the client of a request by its RemoteAddr (host and port, or
// a bare host): an IPv4 address (an IPv4-mapped IPv6 one as IPv4), or the
// /64 network of an IPv6 one, since a single IPv6 host is commonly given
// a whole /64 to pick addresses from; zones are dropped. A RemoteAddr that
// is not an IP address (a Unix socket's, or none) is its own key, as it
// is. Addresses a proxy forwards are not trusted: behind a proxy every
// client is the proxy.
func Key(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return remoteAddr
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
