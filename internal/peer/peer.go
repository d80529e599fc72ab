// Package peer starts and describes real protocol peers (nginx, ferry
// serve) on this machine for ferry's interop suite and its benchmark, and
// makes the files they serve.
//
// It is for tests and benchmarks only and never imports "testing": the
// benchmark is a normal program. Test code wraps it with t.Helper and
// t.Cleanup.
//
// A server is started in the foreground, in its own process group, with its
// configuration and logs in a new temporary directory, on a free port it
// retries on a race for; it is ready when GET /healthz answers 200. Stop
// ends the whole process group and removes the directory.
package peer

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// debianPackages names the Debian package that provides each peer binary
// whose package has another name.
var debianPackages = map[string]string{
	"nginx":  "nginx-light",
	"aria2c": "aria2",
	"danted": "dante-server",
}

// DebianPackage returns the Debian package that provides the peer binary
// name (nginx: nginx-light, aria2c: aria2, curl: curl, ...).
func DebianPackage(name string) string {
	if p := debianPackages[name]; p != "" {
		return p
	}
	return name
}

// FindBinary returns the path of the executable name, looked up in PATH
// and then in /usr/sbin, /sbin and /usr/local/sbin, where daemons such as
// nginx live and which are not on every PATH.
func FindBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH (Debian: apt-get install %s)", name, DebianPackage(name))
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1. The port is
// closed again before it is returned, so a server started on it may race
// with another process; the Start functions retry on that.
func FreePort() (int, error) {
	return freePortOn("127.0.0.1")
}

func freePortOn(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// healthClient polls health URLs. It accepts any certificate: the servers
// under test use self-signed ones.
var healthClient = &http.Client{
	Timeout: 2 * time.Second,
	Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
	},
}

// healthClientIn returns healthClient, or for a server in a network
// namespace a client like it that connects from inside that namespace.
func healthClientIn(netns string) *http.Client {
	if netns == "" {
		return healthClient
	}
	return &http.Client{
		Timeout: healthClient.Timeout,
		Transport: &http.Transport{
			DialContext:       DialContextIn(netns),
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		},
	}
}

// WaitHealthy polls url with GET every 50ms until it answers 200 OK or ctx
// ends; then it returns the cause of ctx's end and the last poll's error.
// Certificates are not verified.
func WaitHealthy(ctx context.Context, url string) error {
	return waitHealthy(ctx, healthClient, url)
}

func waitHealthy(ctx context.Context, client *http.Client, url string) error {
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("%w: %v", context.Cause(ctx), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ModuleRoot returns the directory holding go.mod, as `go env GOMOD` run in
// the current directory says.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module (run this from inside the ferry module)")
	}
	return filepath.Dir(gomod), nil
}

// BuildFerry builds ./cmd/ferry of the module around the current directory
// (see ModuleRoot) into dir, which it makes if needed, and returns the
// binary's path.
func BuildFerry(ctx context.Context, dir string) (string, error) {
	return GoBuild(ctx, dir, "ferry", ".", "./cmd/ferry")
}

// GoBuild builds the package pkg of the module in sub (a directory
// relative to ModuleRoot: "." is ferry's own, "tools" the pinned peers')
// into dir/name, making dir if needed, and returns the binary's path.
func GoBuild(ctx context.Context, dir, name, sub, pkg string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = filepath.Join(root, sub)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -o %s %s (in %s): %w\n%s", bin, pkg, cmd.Dir, err, out)
	}
	return bin, nil
}
