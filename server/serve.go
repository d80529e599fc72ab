package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ferryhq/ferry/server/internal/setting"
)

// Options for Serve. Its limits follow Config's rule: 0 means the default,
// a negative value turns the limit off.
type Options struct {
	Addr                    string // "127.0.0.1:8080"; ":0" picks a port
	TLSSelfSigned           bool   // HTTP/1.1 + HTTP/2 over TLS with a generated self-signed cert (ECDSA P-256, SANs: localhost, 127.0.0.1, ::1, and the host of Addr if any)
	TLSCertFile, TLSKeyFile string // optional real cert instead
	Handler                 http.Handler
	Logger                  *slog.Logger
	ShutdownTimeout         time.Duration    // 0: 10s; negative: wait for every request
	Ready                   func(url string) // called once listening, with the base URL, e.g. "http://127.0.0.1:43121" or "https://..."
	// ReadHeaderTimeout bounds the time a client may take to send a
	// request's header, however slowly it trickles it; the connection is
	// closed then. 0: 30s; negative: no bound. Content has an idle
	// timeout of its own (Config.BodyIdleTimeout).
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request's header (431 past it; over HTTP/2,
	// the header list). 0: DefaultMaxHeaderBytes; negative: no bound of
	// ferry's, only net/http's own (http.DefaultMaxHeaderBytes, 1 MiB).
	MaxHeaderBytes int
}

// DefaultMaxHeaderBytes is Options.MaxHeaderBytes when it is 0: room for
// the upload protocols' fields, a bearer token and browser cookies.
const DefaultMaxHeaderBytes = 64 << 10

const (
	defaultAddr              = "127.0.0.1:8080"
	defaultShutdownTimeout   = 10 * time.Second
	defaultReadHeaderTimeout = 30 * time.Second
)

// Serve listens and serves until ctx is cancelled, then shuts down gracefully (in-flight
// requests get ShutdownTimeout to finish) and returns nil. Plain TCP serves HTTP/1.1 and
// h2c (prior knowledge) on the same port; TLS serves HTTP/1.1 and h2 via ALPN.
//
// An empty Addr means "127.0.0.1:8080". Requests still running when
// ShutdownTimeout is over are cut off, and Serve returns an error wrapping
// [context.DeadlineExceeded]. Errors in the Options are *[ConfigError]s.
func Serve(ctx context.Context, o Options) error {
	if o.Handler == nil {
		return &ConfigError{Field: "Handler", Err: ErrNoHandler}
	}
	if o.Addr == "" {
		o.Addr = defaultAddr
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return &ConfigError{Field: "Addr", Value: o.Addr, Err: err}
	}
	tlsConfig, err := o.tlsConfig(host)
	if err != nil {
		return err
	}

	srv := &http.Server{
		Handler:   o.Handler,
		TLSConfig: tlsConfig,
		Protocols: new(http.Protocols),
		// Bound the header as a whole; content may take hours, so it has
		// an idle timeout instead, which the Server keeps per request.
		// (net/http's 0 for these is no timeout, and its own bound.)
		ReadHeaderTimeout: setting.Resolve(o.ReadHeaderTimeout, defaultReadHeaderTimeout),
		MaxHeaderBytes:    setting.Resolve(o.MaxHeaderBytes, DefaultMaxHeaderBytes),
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.Protocols.SetHTTP1(true)
	if tlsConfig != nil {
		srv.Protocols.SetHTTP2(true)
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	base := baseURL(tlsConfig != nil, host, ln.Addr())
	log.LogAttrs(ctx, slog.LevelInfo, "listening", slog.String("url", base))

	served := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	// The listener already queues connections, so a client told the URL
	// now is not refused even if Serve has not started accepting.
	if o.Ready != nil {
		o.Ready(base)
	}

	select {
	case err := <-served:
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}

	timeout := setting.Resolve(o.ShutdownTimeout, defaultShutdownTimeout)
	log.LogAttrs(ctx, slog.LevelInfo, "shutting down", slog.Duration("timeout", timeout))
	sctx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
	if timeout > 0 {
		sctx, cancel = context.WithTimeout(sctx, timeout)
	}
	defer cancel()
	err = srv.Shutdown(sctx)
	<-served // http.ErrServerClosed, at once
	if err != nil {
		srv.Close()
		return fmt.Errorf("server: shutdown: requests still running after %v: %w", timeout, err)
	}
	return nil
}

// tlsConfig returns the TLS configuration o asks for, or nil for plain TCP.
func (o *Options) tlsConfig(host string) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case o.TLSCertFile != "" || o.TLSKeyFile != "":
		if o.TLSCertFile == "" || o.TLSKeyFile == "" {
			return nil, &ConfigError{Field: "TLSCertFile", Err: ErrTLSPair}
		}
		cert, err = tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, &ConfigError{Field: "TLSCertFile", Value: o.TLSCertFile, Err: err}
		}
	case o.TLSSelfSigned:
		var hosts []string
		if host != "" {
			hosts = append(hosts, host)
		}
		cert, err = SelfSignedCert(hosts...)
		if err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	// Serve's ServeTLS adds "h2" and "http/1.1" to NextProtos from
	// Protocols, so ALPN needs no setting here.
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// baseURL is the URL clients on this machine can use to reach addr. A
// wildcard listener is reached through loopback, which is also in the
// self-signed certificate.
func baseURL(secure bool, host string, addr net.Addr) string {
	scheme := "http"
	if secure {
		scheme = "https"
	}
	_, port, _ := net.SplitHostPort(addr.String())
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.Equal(net.IPv4zero):
		host = "127.0.0.1"
	case ip != nil && ip.Equal(net.IPv6unspecified):
		host = "::1"
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}).String()
}
