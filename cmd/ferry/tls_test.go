package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeClientCert writes a self-signed client certificate and its key to
// cert.pem and key.pem in dir.
func writeClientCert(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile, cert
}

// --cert and --key present a client certificate; --tlsv1.3 refuses a
// server that offers less.
func TestClientCertificateAndMinimumVersion(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, clientCert := writeClientCert(t, dir)
	pool := x509.NewCertPool()
	pool.AddCert(clientCert)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, "+r.TLS.PeerCertificates[0].Subject.CommonName+"\n")
	}))
	ts.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MaxVersion: tls.VersionTLS12}
	ts.StartTLS()
	defer ts.Close()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644)

	ferry := func(args ...string) (int, string, string) {
		var out, errw bytes.Buffer
		code := run(context.Background(), append([]string{"get", "-q", "--cacert", ca, "-o", "-"}, args...), strings.NewReader(""), &out, &errw)
		return code, out.String(), errw.String()
	}
	if code, out, errw := ferry("--cert", certFile, "--key", keyFile, ts.URL+"/x"); code != exitOK || out != "hello, ferry client\n" {
		t.Errorf("with --cert: exit %d, %q, %s", code, out, errw)
	}
	if code, _, _ := ferry(ts.URL + "/x"); code == exitOK {
		t.Error("a server that demands a client certificate let ferry in without one")
	}
	if code, _, errw := ferry("--cert", certFile, "--key", keyFile, "--tlsv1.3", ts.URL+"/x"); code == exitOK || !strings.Contains(errw, "version") {
		t.Errorf("--tlsv1.3 against a TLS 1.2 server: exit %d, %s", code, errw)
	}
	if code, _, _ := ferry("--key", keyFile, ts.URL+"/x"); code != exitUsage {
		t.Errorf("--key without --cert: exit %d, want %d", code, exitUsage)
	}
}
