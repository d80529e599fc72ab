package retry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"reflect"
	"syscall"
)

// Permanent reports whether err is a failure that no later attempt can
// cure, whatever marks it as retryable: a host name that does not exist, a
// certificate that cannot be verified, a server that does not speak TLS or
// refuses the handshake. A DNS timeout or temporary failure is not
// permanent.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return NameNotFound(err)
	}
	return BadCertificate(err) || NotTLS(err) || refusedHandshake(err)
}

// NameNotFound reports whether err is the host name not existing: a DNS
// answer that says so, not a timeout or a temporary failure.
func NameNotFound(err error) bool {
	dns, ok := errors.AsType[*net.DNSError](err)
	return ok && dns.IsNotFound && !dns.IsTimeout && !dns.IsTemporary
}

// BadCertificate reports whether err is the verification of the server's
// certificate failing: an authority the system does not trust, a
// certificate for other names, an expired or otherwise invalid one.
func BadCertificate(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	// A custom dialer may hand x509's errors on without the tls wrapper.
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	return false
}

// NotTLS reports a server that answered the TLS handshake with something
// else, typically plain HTTP on an https URL's port.
func NotTLS(err error) bool {
	_, ok := errors.AsType[tls.RecordHeaderError](err)
	return ok
}

// refusedHandshake reports a TLS alert from the server that says it will
// never accept this client as it is: no common protocol version or cipher,
// a client certificate required or refused, an unknown server name.
func refusedHandshake(err error) bool {
	a, ok := alertOf(err)
	if !ok {
		return false
	}
	// RFC 8446 §6.2 alert descriptions.
	switch a {
	case 40, // handshake_failure
		42, 43, 44, 45, 46, // bad, unsupported, revoked, expired, unknown certificate
		48, 49, // unknown_ca, access_denied
		70, 71, // protocol_version, insufficient_security
		112, 116, 120: // unrecognized_name, certificate_required, no_application_protocol
		return true
	}
	return false
}

// alertOf is the TLS alert err reports. Over TCP, crypto/tls reports an
// alert the server sent as a *net.OpError "remote error" around a value of
// its unexported alert type (a uint8); tls.AlertError is what QUIC and
// tests use.
func alertOf(err error) (tls.AlertError, bool) {
	if a, ok := errors.AsType[tls.AlertError](err); ok {
		return a, true
	}
	// net/http wraps it again (an https proxy's handshake: "proxyconnect").
	for op, ok := errors.AsType[*net.OpError](err); ok; op, ok = errors.AsType[*net.OpError](op.Err) {
		if op.Op != "remote error" || op.Err == nil {
			continue
		}
		v := reflect.ValueOf(op.Err)
		if t := v.Type(); t.PkgPath() == "crypto/tls" && t.Name() == "alert" && t.Kind() == reflect.Uint8 {
			return tls.AlertError(v.Uint()), true
		}
	}
	return 0, false
}

// Unreachable reports whether err is a failure to reach the host at all:
// the connection refused or without a route, or the name not resolved for
// now. Nothing was exchanged with the server, so the next attempt only
// waits for it to come (back). A permanent failure is never unreachable.
func Unreachable(err error) bool {
	if err == nil || Permanent(err) {
		return false
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return true
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}
