package peer

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"net"
	"path/filepath"
	"runtime/debug"
)

// BuildTusd builds tusd, at the version tools/go.mod pins, into dir and
// returns its path. It needs the Go toolchain and the module proxy.
func BuildTusd(ctx context.Context, dir string) (string, error) {
	return GoBuild(ctx, dir, "tusd", "tools", "github.com/tus/tusd/v2/cmd/tusd")
}

// TusdVersion is the tusd module version bin was built from, as its
// build information records it ("" when it records none): a tusd built
// by go build from a module says "n/a" to -version.
func TusdVersion(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return ""
	}
	for _, m := range append([]*debug.Module{&bi.Main}, bi.Deps...) {
		if m.Path == "github.com/tus/tusd/v2" {
			return m.Version
		}
	}
	return ""
}

// TusdConfig says how a started tusd runs.
type TusdConfig struct {
	// Bin is the tusd binary, e.g. from BuildTusd. Required.
	Bin string
	// UploadDir is where tusd stores uploads. Required.
	UploadDir string
	// Listen is the address, "host:port"; port 0 picks a free one. The
	// default is 127.0.0.1:0.
	Listen string
	// Netns is the network namespace tusd runs in ("" is this
	// process's).
	Netns string
}

// StartTusd starts tusd with its endpoint at URL + "/files/", the IETF
// draft enabled beside tus 1.0. It is ready when its /metrics answers.
// ctx bounds the start; call Stop. Its log is tusd.log.
func StartTusd(ctx context.Context, cfg TusdConfig) (*Server, error) {
	if cfg.Bin == "" || cfg.UploadDir == "" {
		return nil, fmt.Errorf("tusd: need Bin and UploadDir")
	}
	return startServerAt(ctx, cfg.Netns, "tusd", "http", cfg.Listen, "/metrics", func(dir, addr string) (*process, []string, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, nil, err
		}
		p, err := startProcessIn(cfg.Netns, filepath.Join(dir, "tusd.log"), cfg.Bin,
			"-host", host, "-port", port, "-upload-dir", cfg.UploadDir, "-enable-experimental-protocol")
		return p, []string{"tusd.log"}, err
	})
}
