package main

import (
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/server"
	"github.com/ferryhq/ferry/server/stream/audio"
)

func serveCmd(io stdio) *cobra.Command {
	var (
		root, addr, cert, key string
		selfSigned, quiet     bool
		dotFiles              bool
		uploads, token        string
		maxUpload             string
		expiry                time.Duration
		maxStorage            string
		creationRate          float64
		creationBurst         int
		bodyIdle, streamIdle  time.Duration
		headerTimeout         time.Duration
		maxHeader             string
		perClient             int
	)
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve files with Range, If-Range, strong ETags and HTTP/2",
		Long: `Serve the files under --root over HTTP/1.1 and HTTP/2 (h2c on plain TCP,
h2 over TLS with --tls-self-signed or --tls-cert/--tls-key). GET /healthz
answers once the server is ready. SIGTERM or Ctrl-C shuts down gracefully.

With --uploads DIR, ferry also takes uploads into DIR:
  /files/         resumable uploads: tus 1.0 and the IETF resumable-upload
                  draft (interop versions 3-8); GET /files/<id> downloads a
                  finished upload, with Range
  POST /upload    multipart/form-data; answers JSON with each file's name,
                  size, sha256 and URL
  /stream/NAME    live streams (ferry stream): stored in DIR/streams as they
                  arrive, replying JSON lines while the body flows (for WAV
                  or raw 16-bit PCM: level and voice activity); resumable
                  with the IETF draft; GET serves a finished one
--token requires "Authorization: Bearer <token>" on those endpoints (the
FERRY_TOKEN environment variable works too, and keeps the token out of ps).

Uploads and streams are limited out of the box: --max-storage bounds what
DIR holds in uploads, finished or not, and streams (507 past it; by
default, no bound of its own, but they leave 5% of DIR's file system free,
at most 4 GiB, measured as bytes arrive, so space freed there is usable at
once; 10 GiB in all where the free space is unknown), and one client (an
IP address, or an IPv6 /64) may create --creation-burst uploads and
streams at once and then --creation-rate a second (429 with Retry-After
past them).

What is not yours to publish is answered like a missing file (404) below
--root: the uploads directory and its streams, even when DIR is inside the
root (the default root is "."), however they are reached (a link, a bind
mount); the daemon's state directory; files ferry is still writing
(NAME.part, NAME.ferry, .NAME.tmp*); and dot files such as .git or .env
unless --dotfiles. Uploads are served only at /files/<id> and /stream/NAME,
behind --token.

What clients send is bounded: a header must arrive within --header-timeout
and fit --max-header-size (431 past it); content that goes
--body-idle-timeout without a byte is cut (every byte resets it, so slow
uploads go on), and a live stream, whose producer may pause, has
--stream-idle-timeout; one client address (an IPv6 /64) may have
--max-uploads-per-client requests with content at once (429 past it; behind
a reverse proxy all clients share its address: raise it, or 0 for none).
Every limit flag takes 0 to turn its limit off.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 0 {
				return usagef("serve takes no arguments")
			}
			if (cert == "") != (key == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			if uploads == "" && (token != "" || maxUpload != "" || c.Flags().Changed("upload-expiry") ||
				c.Flags().Changed("max-storage") || c.Flags().Changed("creation-rate") || c.Flags().Changed("creation-burst")) {
				return usagef("--token, --max-upload-size, --upload-expiry, --max-storage, --creation-rate and --creation-burst need --uploads DIR")
			}
			for _, f := range []struct {
				name     string
				negative bool
			}{
				{"--upload-expiry", expiry < 0}, {"--creation-rate", creationRate < 0}, {"--creation-burst", creationBurst < 0},
				{"--body-idle-timeout", bodyIdle < 0}, {"--stream-idle-timeout", streamIdle < 0},
				{"--header-timeout", headerTimeout < 0}, {"--max-uploads-per-client", perClient < 0},
			} {
				if f.negative {
					return usagef("%s must not be negative (0 turns it off)", f.name)
				}
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if quiet {
				level = slog.LevelWarn
			}
			log := slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: level}))
			cfg := server.Config{Root: root, Logger: log, Uploads: uploads, Token: token, UploadExpiry: expiry}
			cfg.StreamProcessors = audio.FromRequest
			cfg.Hide = []string{ferry.DaemonConfig{}.WithDefaults().StateDir}
			cfg.ServeDotFiles = dotFiles
			if cfg.Token == "" && uploads != "" {
				cfg.Token = os.Getenv("FERRY_TOKEN")
			}
			cfg.UploadExpiry = offWhenZero(expiry)
			if maxUpload != "" {
				n, err := parseSize(maxUpload)
				if err != nil {
					return usagef("--max-upload-size: %v", err)
				}
				cfg.MaxUploadSize = offWhenZero(n)
			}
			if maxStorage != "" {
				n, err := parseSize(maxStorage)
				if err != nil {
					return usagef("--max-storage: %v", err)
				}
				cfg.MaxUploadStorage = offWhenZero(n)
			}
			cfg.UploadCreationRate = offWhenZero(creationRate)
			cfg.UploadCreationBurst = offWhenZero(creationBurst)
			cfg.BodyIdleTimeout = offWhenZero(bodyIdle)
			cfg.StreamIdleTimeout = offWhenZero(streamIdle)
			cfg.MaxUploadsPerClient = offWhenZero(perClient)
			headerBytes, err := parseSize(maxHeader)
			if err != nil || headerBytes > 1<<30 {
				return usagef("--max-header-size: want a size such as 64K, not %q", maxHeader)
			}
			srv, err := server.New(cfg)
			if err != nil {
				return usageError{err}
			}
			defer srv.Close()
			return server.Serve(c.Context(), server.Options{
				Addr:              addr,
				Handler:           srv,
				Logger:            log,
				TLSSelfSigned:     selfSigned,
				TLSCertFile:       cert,
				TLSKeyFile:        key,
				ReadHeaderTimeout: offWhenZero(headerTimeout),
				MaxHeaderBytes:    int(offWhenZero(headerBytes)),
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
	fl.BoolVar(&dotFiles, "dotfiles", false, "serve files and directories whose names start with a dot (.well-known); hidden by default")
	fl.StringVar(&uploads, "uploads", "", "accept uploads into `DIR` at /files/ (tus, IETF draft) and POST /upload (multipart); off when empty")
	fl.StringVar(&token, "token", "", "require `T` as a bearer token on the upload endpoints (default $FERRY_TOKEN)")
	fl.StringVar(&maxUpload, "max-upload-size", "", "refuse uploads and streams larger than `SIZE`, e.g. 10G (default and 0: no limit)")
	fl.DurationVar(&expiry, "upload-expiry", 24*time.Hour, "remove unfinished uploads idle for `DURATION` (0: never)")
	fl.StringVar(&maxStorage, "max-storage", "", "refuse new upload and stream bytes once DIR holds `SIZE` in them (0: no limit; default: leave 5% of DIR's file system free, at most 4 GiB, or 10G where its free space is unknown)")
	fl.Float64Var(&creationRate, "creation-rate", server.DefaultUploadCreationRate, "let one client create `N` uploads and streams a second after its burst (0: no limit)")
	fl.IntVar(&creationBurst, "creation-burst", server.DefaultUploadCreationBurst, "let one client create `N` uploads and streams at once (0: no burst, one at a time at the rate)")
	fl.DurationVar(&bodyIdle, "body-idle-timeout", server.DefaultBodyIdleTimeout, "cut request content that goes `DURATION` without a byte (0: never)")
	fl.DurationVar(&streamIdle, "stream-idle-timeout", server.DefaultStreamIdleTimeout, "cut a live stream's content after `DURATION` without a byte; longer, as its producer may pause (0: never)")
	fl.DurationVar(&headerTimeout, "header-timeout", 30*time.Second, "close a connection whose request header takes longer than `DURATION` (0: never)")
	fl.StringVar(&maxHeader, "max-header-size", "64K", "answer 431 to a request header larger than `SIZE` (0: no bound but net/http's own, 1 MiB)")
	fl.IntVar(&perClient, "max-uploads-per-client", server.DefaultMaxUploadsPerClient, "allow `N` requests with content at once per client address (0: no bound)")
	return c
}

// offWhenZero maps a limit flag's 0 ("never", "no limit") to the negative
// value a server.Config or server.Options field takes for it; their own 0
// means the default.
func offWhenZero[T int | int64 | float64 | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}
