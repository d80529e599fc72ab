package wan

import (
	"context"

	"github.com/ferryhq/ferry/internal/peer"
)

// BuildForwarder builds wanfwd (./internal/peer/wan/wanfwd of the module
// around the current directory) into dir and returns the binary's path.
func BuildForwarder(ctx context.Context, dir string) (string, error) {
	return peer.GoBuild(ctx, dir, "wanfwd", ".", "./internal/peer/wan/wanfwd")
}
