package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/server"
)

// startServe runs Serve with o until the test ends and returns the URL it
// reported and a channel with Serve's result.
func startServe(t *testing.T, ctx context.Context, o server.Options) (string, <-chan error) {
	t.Helper()
	ready := make(chan string, 1)
	o.Ready = func(url string) { ready <- url }
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, o) }()
	select {
	case url := <-ready:
		return url, done
	case err := <-done:
		t.Fatalf("Serve = %v before Ready", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve never called Ready")
	}
	return "", nil
}

func waitServe(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after ctx was cancelled")
		return nil
	}
}

func fileServer(t *testing.T, files map[string]string) *server.Server {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := server.New(server.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func TestServe(t *testing.T) {
	srv := fileServer(t, map[string]string{"a.txt": "hello, ferry\n"})
	for _, h2c := range []bool{false, true} {
		t.Run(map[bool]string{false: "h1", true: "h2c"}[h2c], func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			url, done := startServe(t, ctx, server.Options{Handler: srv})
			if !strings.HasPrefix(url, "http://127.0.0.1:") {
				t.Errorf("Ready(%q), want http://127.0.0.1:PORT", url)
			}
			client := newClient(t, h2c)
			for _, c := range []struct{ path, rng, body string }{
				{"/healthz", "", "ok\n"},
				{"/a.txt", "bytes=7-11", "ferry"},
			} {
				req, _ := http.NewRequest("GET", url+c.path, nil)
				if c.rng != "" {
					req.Header.Set("Range", c.rng)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != c.body {
					t.Errorf("GET %s = %q, want %q", c.path, body, c.body)
				}
				if want := map[bool]int{false: 1, true: 2}[h2c]; resp.ProtoMajor != want {
					t.Errorf("GET %s: proto = %s, want HTTP/%d", c.path, resp.Proto, want)
				}
			}
			client.CloseIdleConnections()
			cancel()
			if err := waitServe(t, done); err != nil {
				t.Errorf("Serve = %v after cancel, want nil", err)
			}
		})
	}
}

func TestServeTLSSelfSigned(t *testing.T) {
	srv := fileServer(t, map[string]string{"a.txt": "over tls\n"})
	ctx, cancel := context.WithCancel(t.Context())
	url, done := startServe(t, ctx, server.Options{Handler: srv, TLSSelfSigned: true})
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("Ready(%q), want https://127.0.0.1:PORT", url)
	}

	// Take the certificate the server shows, then trust exactly that one,
	// so the client checks its names for real.
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("certificate key = %T, want ECDSA P-256", leaf.PublicKey)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)

	for _, tt := range []struct {
		name  string
		proto func(*http.Protocols)
		want  string
		alpn  string
	}{
		{"h2", func(p *http.Protocols) { p.SetHTTP2(true) }, "HTTP/2.0", "h2"},
		{"h1", func(p *http.Protocols) { p.SetHTTP1(true) }, "HTTP/1.1", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := new(http.Protocols)
			tt.proto(p)
			tr := &http.Transport{Protocols: p, TLSClientConfig: &tls.Config{RootCAs: roots}}
			defer tr.CloseIdleConnections()
			for _, host := range []string{url, strings.Replace(url, "127.0.0.1", "localhost", 1)} {
				req, _ := http.NewRequest("GET", host+"/a.txt", nil)
				req.Header.Set("Range", "bytes=5-7")
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatalf("GET %s: %v", host, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 206 || string(body) != "tls" {
					t.Errorf("GET %s = %d %q, want 206 %q", host, resp.StatusCode, body, "tls")
				}
				if resp.Proto != tt.want || resp.TLS.NegotiatedProtocol != tt.alpn {
					t.Errorf("GET %s: proto %s, ALPN %q; want %s, %q", host, resp.Proto, resp.TLS.NegotiatedProtocol, tt.want, tt.alpn)
				}
			}
		})
	}

	cancel()
	if err := waitServe(t, done); err != nil {
		t.Errorf("Serve = %v after cancel, want nil", err)
	}
}

// slowHandler sends chunks bytes in pieces of 1 KiB with pauses, and closes
// started when the first piece is out.
func slowHandler(chunks int, started chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(chunks*1024))
		piece := []byte(strings.Repeat("x", 1024))
		for i := range chunks {
			if _, err := w.Write(piece); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			if i == 0 {
				close(started)
			}
			select {
			case <-time.After(30 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
}

func TestServeGracefulShutdown(t *testing.T) {
	const chunks = 10
	for _, h2c := range []bool{false, true} {
		t.Run(map[bool]string{false: "h1", true: "h2c"}[h2c], func(t *testing.T) {
			started := make(chan struct{})
			ctx, cancel := context.WithCancel(t.Context())
			url, done := startServe(t, ctx, server.Options{Handler: slowHandler(chunks, started)})
			client := newClient(t, h2c)

			resp, err := client.Get(url + "/slow")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			<-started
			cancel() // while the download is in flight

			body, err := io.ReadAll(resp.Body)
			if err != nil || len(body) != chunks*1024 {
				t.Fatalf("download during shutdown: %d bytes, err %v; want %d bytes", len(body), err, chunks*1024)
			}
			if err := waitServe(t, done); err != nil {
				t.Errorf("Serve = %v, want nil", err)
			}
			if _, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second); err == nil {
				t.Error("listener still accepting after Serve returned")
			}
		})
	}
}

func TestServeShutdownTimeout(t *testing.T) {
	started := make(chan struct{})
	block := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		close(started)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	url, done := startServe(t, ctx, server.Options{Handler: block, ShutdownTimeout: 100 * time.Millisecond})
	client := newClient(t, false)
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	cancel()
	if err := waitServe(t, done); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Serve = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("reading the cut-off response succeeded, want an error")
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		o    server.Options
		want error
	}{
		{"no handler", server.Options{}, server.ErrNoHandler},
		{"cert without key", server.Options{Handler: http.NotFoundHandler(), TLSCertFile: "c.pem"}, server.ErrTLSPair},
		{"missing cert", server.Options{Handler: http.NotFoundHandler(), TLSCertFile: filepath.Join(dir, "c.pem"), TLSKeyFile: filepath.Join(dir, "k.pem")}, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := server.Serve(t.Context(), tt.o)
			if !errors.Is(err, tt.want) {
				t.Errorf("Serve = %v, want errors.Is %v", err, tt.want)
			}
			if _, ok := errors.AsType[*server.ConfigError](err); !ok {
				t.Errorf("Serve = %T, want *ConfigError", err)
			}
		})
	}
}

func TestSelfSignedCert(t *testing.T) {
	cert, err := server.SelfSignedCert("files.example", "10.1.2.3", "0.0.0.0", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := cert.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key = %T, want ECDSA P-256", cert.PrivateKey)
	}
	if want := []string{"localhost", "files.example"}; !slices.Equal(leaf.DNSNames, want) {
		t.Errorf("DNS SANs = %q, want %q", leaf.DNSNames, want)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "::1", "10.1.2.3"}; !slices.Equal(ips, want) {
		t.Errorf("IP SANs = %q, want %q", ips, want)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "files.example", "10.1.2.3"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("Verify(%s): %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other.example"}); err == nil {
		t.Error("Verify(other.example) succeeded, want a name mismatch")
	}
}

// Serve bounds what a client may send before its request is routed: the
// header's size (431 past MaxHeaderBytes) and the time it takes to send it
// (the connection closes after ReadHeaderTimeout, however slowly the bytes
// trickle in).
func TestServeHeaderLimits(t *testing.T) {
	srv := fileServer(t, map[string]string{"a.txt": "a"})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	url, done := startServe(t, ctx, server.Options{Handler: srv, MaxHeaderBytes: 4 << 10, ReadHeaderTimeout: 50 * time.Millisecond})
	addr := strings.TrimPrefix(url, "http://")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}

	c := dial()
	io.WriteString(c, "GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("b", 8<<10)+"\r\n\r\n")
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(got), "HTTP/1.1 431") {
		t.Errorf("an 8 KiB header with MaxHeaderBytes 4 KiB: %.40q, want 431", got)
	}

	c = dial()
	io.WriteString(c, "GET /a.txt HTTP/1.1\r\nHost: x\r\n") // and never the rest
	if got, err := io.ReadAll(c); err != nil {
		t.Errorf("a header never finished: %v (read %q), want the connection closed", err, got)
	}

	// A header trickled a byte at a time, each one sooner than the
	// timeout: the whole is still bounded.
	c = dial()
	closed := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(c)
		closed <- err
	}()
	head := "GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 1000)
	var readErr error
	ended := false
trickle:
	for i := 0; i < len(head); i++ {
		if _, err := c.Write([]byte{head[i]}); err != nil {
			break // closed by the server, as it should
		}
		select {
		case readErr = <-closed:
			ended = true
			break trickle
		case <-time.After(time.Millisecond):
		}
	}
	if !ended {
		select {
		case readErr = <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("a trickled header held the connection")
		}
	}
	if readErr != nil && !errors.Is(readErr, syscall.ECONNRESET) {
		t.Errorf("reading the trickled connection: %v, want it closed", readErr)
	}
	cancel()
	waitServe(t, done)
}
