package main

import (
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry/server"
)

func serveCmd(io stdio) *cobra.Command {
	var (
		root, addr, cert, key string
		selfSigned, quiet     bool
	)
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve files with Range, If-Range, strong ETags and HTTP/2",
		Long: `Serve the files under --root over HTTP/1.1 and HTTP/2 (h2c on plain TCP,
h2 over TLS with --tls-self-signed or --tls-cert/--tls-key). GET /healthz
answers once the server is ready. SIGTERM or Ctrl-C shuts down gracefully.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 0 {
				return usagef("serve takes no arguments")
			}
			if (cert == "") != (key == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if quiet {
				level = slog.LevelWarn
			}
			log := slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: level}))
			srv, err := server.New(server.Config{Root: root, Logger: log})
			if err != nil {
				return usageError{err}
			}
			defer srv.Close()
			return server.Serve(c.Context(), server.Options{
				Addr:          addr,
				Handler:       srv,
				Logger:        log,
				TLSSelfSigned: selfSigned,
				TLSCertFile:   cert,
				TLSKeyFile:    key,
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&root, "root", ".", "serve the files under `DIR`")
	fl.StringVar(&addr, "addr", "127.0.0.1:8080", "listen on `HOST:PORT` (:0 picks a free port)")
	fl.BoolVar(&selfSigned, "tls-self-signed", false, "serve HTTPS with a generated self-signed certificate")
	fl.StringVar(&cert, "tls-cert", "", "TLS certificate `FILE` (PEM)")
	fl.StringVar(&key, "tls-key", "", "TLS key `FILE` (PEM)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "log only warnings and errors")
	return c
}
