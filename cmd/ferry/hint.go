package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/hls"
	"github.com/ferryhq/ferry/internal/retry"
)

// hint says what to do about a failure, naming the flag that helps, or ""
// when there is nothing to add to the error itself. The failures are told
// apart as the retry policy tells them (internal/retry).
func hint(err error) string {
	switch {
	case retry.NameNotFound(err):
		dns, _ := errors.AsType[*net.DNSError](err)
		return fmt.Sprintf("the host name %s does not resolve: check it", dns.Name)
	case retry.BadCertificate(err):
		return certificateHint(err)
	case retry.NotTLS(err):
		return "the server does not speak TLS there: try http:// instead of https://"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing accepts connections there: check the URL's port, or that the server runs"
	}
	if se, ok := errors.AsType[*ferry.StatusError](err); ok {
		switch se.StatusCode {
		case http.StatusUnauthorized, http.StatusProxyAuthRequired:
			return "the server wants credentials: send them with -H 'Authorization: ...'"
		}
	}
	if le, ok := errors.AsType[*hls.LimitError](err); ok && le.What == "segments" {
		return fmt.Sprintf("a playlist of more than %d segments is refused: raise the limit with --max-segments N (about 1.5 KiB of memory per segment)", le.Limit)
	}
	return ""
}

// certificateHint says what to do about a server certificate that failed
// verification (retry.BadCertificate), by the reason it failed.
func certificateHint(err error) string {
	if h, ok := errors.AsType[x509.HostnameError](err); ok {
		return fmt.Sprintf("the server's certificate is not for %s: check the host name in the URL (-k skips the check, insecurely)", h.Host)
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return "the server's certificate is signed by an authority this system does not trust: " +
			"name that authority's certificate with --cacert FILE, or skip the check with -k (insecure)"
	}
	if c, ok := errors.AsType[x509.CertificateInvalidError](err); ok && c.Reason == x509.Expired {
		return "the server's certificate has expired or is not valid yet: check this system's clock (-k skips the check, insecurely)"
	}
	return "the server's certificate could not be verified: --cacert FILE names the authority to trust, -k skips the check (insecure)"
}
