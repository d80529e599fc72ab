package peer

import (
	"context"
	"fmt"
	"path/filepath"
)

// FerryServeConfig says what a started `ferry serve` serves.
type FerryServeConfig struct {
	// Bin is the ferry binary, e.g. from BuildFerry. Required.
	Bin string
	// Root is the directory served at /. Required.
	Root string
	// Listen is the address, "host:port"; port 0 picks a free one. The
	// default is 127.0.0.1:0.
	Listen string
	// TLS serves HTTPS with a self-signed certificate (--tls-self-signed).
	TLS bool
	// Uploads, when set, turns uploads and live streams on (--uploads).
	Uploads string
	// Netns is the network namespace the server runs in (a name under
	// NetnsDir or a path); "" is this process's. Listen is an address
	// there.
	Netns string
	// Args are more flags for ferry serve, after the ones above.
	Args []string
}

// StartFerryServe starts `ferry serve --root Root --addr Listen` (see the
// package comment). ctx bounds the start, not the server's life: call Stop.
// Its log is serve.log.
func StartFerryServe(ctx context.Context, cfg FerryServeConfig) (*Server, error) {
	if cfg.Bin == "" || cfg.Root == "" {
		return nil, fmt.Errorf("ferry serve: need Bin and Root")
	}
	scheme := "http"
	if cfg.TLS {
		scheme = "https"
	}
	return startServerIn(ctx, cfg.Netns, "ferry-serve", scheme, cfg.Listen, func(dir, addr string) (*process, []string, error) {
		args := []string{"serve", "--root", cfg.Root, "--addr", addr}
		if cfg.TLS {
			args = append(args, "--tls-self-signed")
		}
		if cfg.Uploads != "" {
			args = append(args, "--uploads", cfg.Uploads)
		}
		args = append(args, cfg.Args...)
		p, err := startProcessIn(cfg.Netns, filepath.Join(dir, "serve.log"), cfg.Bin, args...)
		return p, []string{"serve.log"}, err
	})
}
