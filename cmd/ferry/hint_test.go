package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
)

// Each failure the retry policy recognises gets its hint, also wrapped as
// a transfer's error wraps it; a temporary DNS failure gets none.
func TestHint(t *testing.T) {
	wrap := func(err error) error {
		return fmt.Errorf("ferry: download: %w", &url.Error{Op: "Get", URL: "https://h/f", Err: err})
	}
	cert := &x509.Certificate{}
	tests := []struct {
		err  error
		want string // in the hint; "" for none
	}{
		{&net.DNSError{Name: "nope.invalid", IsNotFound: true}, "nope.invalid does not resolve"},
		{&net.DNSError{Name: "slow.example", IsNotFound: true, IsTemporary: true}, ""},
		{x509.HostnameError{Certificate: cert, Host: "other.example"}, "not for other.example"},
		{x509.UnknownAuthorityError{Cert: cert}, "--cacert FILE"},
		{x509.CertificateInvalidError{Cert: cert, Reason: x509.Expired}, "check this system's clock"},
		{&tls.CertificateVerificationError{Err: errors.New("x")}, "could not be verified"},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "try http://"},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "nothing accepts connections"},
		{errors.New("something else"), ""},
	}
	for _, tt := range tests {
		got := hint(wrap(tt.err))
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("hint(%v) = %q, want %q in it", tt.err, got, tt.want)
		}
	}
}
