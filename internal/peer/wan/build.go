package wan

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/ferryhq/ferry/internal/peer"
)

// BuildForwarder builds wanfwd (./internal/peer/wan/wanfwd of the module
// around the current directory) into dir and returns the binary's path.
func BuildForwarder(ctx context.Context, dir string) (string, error) {
	root, err := peer.ModuleRoot()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin, err := filepath.Abs(filepath.Join(dir, "wanfwd"))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./internal/peer/wan/wanfwd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -o %s ./internal/peer/wan/wanfwd (in %s): %w\n%s", bin, root, err, out)
	}
	return bin, nil
}
