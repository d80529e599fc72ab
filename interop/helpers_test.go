//go:build interop

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/peer"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

// --- test files -----------------------------------------------------------

type fixtureFile struct {
	path string
	sum  string
	size int64
}

var (
	fixtureMu sync.Mutex
	fixtures  = map[string]fixtureFile{}
)

// fixture returns a file of size random bytes named name in dataDir, and
// its hex sha-256. Files are made once per test binary run and shared.
func fixture(t testing.TB, name string, size int64) (path, sum string) {
	t.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if f, ok := fixtures[name]; ok {
		if f.size != size {
			t.Fatalf("fixture %s: asked for %d bytes, already made with %d", name, size, f.size)
		}
		return f.path, f.sum
	}
	path = filepath.Join(dataDir, name)
	start := time.Now()
	sum, err := peer.MakeFile(path, size, fixtureSeed(name))
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	t.Logf("fixture %s: %d bytes, sha256 %s, made in %v", name, size, sum, time.Since(start).Round(time.Millisecond))
	fixtures[name] = fixtureFile{path: path, sum: sum, size: size}
	return path, sum
}

// fixtureSeed seeds a fixture's bytes with the FNV-1a hash of its name,
// so that a failure can be reproduced.
func fixtureSeed(name string) uint64 {
	h := fnv.New64a()
	io.WriteString(h, name)
	return h.Sum64()
}

// copyPrefix writes the first n bytes of src to dst, as an interrupted
// download would have left them.
func copyPrefix(t testing.TB, src, dst string, n int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(out, in, n); err != nil {
		out.Close()
		t.Fatalf("copy prefix: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// assertSameFile fails unless path has the given size and sha-256.
func assertSameFile(t testing.TB, path string, size int64, sum string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("result: %v", err)
	}
	if fi.Size() != size {
		t.Fatalf("result %s: size %d, want %d", path, fi.Size(), size)
	}
	if got := ferrytest.FileSHA256(t, path); got != sum {
		t.Fatalf("result %s: sha256 %s, want %s", path, got, sum)
	}
}

// --- running commands -----------------------------------------------------

type cmdResult struct {
	args     []string
	stdout   string
	stderr   string
	exitCode int // -1 when killed by a signal or not started
	rusage   *syscall.Rusage
	elapsed  time.Duration
	timedOut bool
}

func (r cmdResult) String() string {
	return fmt.Sprintf("%s: exit %d after %v\nstdout:\n%s\nstderr:\n%s",
		strings.Join(r.args, " "), r.exitCode, r.elapsed.Round(time.Millisecond),
		tail(r.stdout, 4000), tail(r.stderr, 4000))
}

// maxRSS returns the peak resident set size of the finished process in bytes.
func (r cmdResult) maxRSS() int64 {
	if r.rusage == nil {
		return 0
	}
	return r.rusage.Maxrss * KiB // Linux reports KiB
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// runCmd runs a command to completion, bounded by timeout.
func runCmd(t testing.TB, timeout time.Duration, name string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := cmdResult{
		args:     append([]string{name}, args...),
		stdout:   stdout.String(),
		stderr:   stderr.String(),
		elapsed:  time.Since(start),
		exitCode: -1,
	}
	if cmd.ProcessState != nil {
		res.exitCode = cmd.ProcessState.ExitCode()
		res.rusage, _ = cmd.ProcessState.SysUsage().(*syscall.Rusage)
	}
	if ctx.Err() != nil {
		res.timedOut = true
		t.Fatalf("timed out after %v: %s", timeout, res)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %s: %v", name, err)
	}
	return res
}

// getResult is the --json object printed by `ferry get`.
type getResult struct {
	URL           string   `json:"url"`
	Path          string   `json:"path"`
	Size          int64    `json:"size"`
	SizeDownload  int64    `json:"size_download"`
	ResumedFrom   int64    `json:"resumed_from"`
	Connections   int      `json:"connections"`
	Retries       int      `json:"retries"`
	HTTPVersion   string   `json:"http_version"`
	TimeTotal     float64  `json:"time_total"`
	SpeedDownload float64  `json:"speed_download"`
	SHA256        string   `json:"sha256"`
	Error         *jsonAny `json:"error"`
}

// jsonAny keeps whatever the error field holds (string or object).
type jsonAny struct{ raw json.RawMessage }

func (j *jsonAny) UnmarshalJSON(b []byte) error {
	j.raw = append(j.raw[:0], b...)
	return nil
}

func (j *jsonAny) String() string {
	if j == nil {
		return "<nil>"
	}
	return string(j.raw)
}

// parseGetJSON decodes the one JSON object `ferry get --json` prints and
// checks the fields the CLI contract promises are there.
func parseGetJSON(t testing.TB, res cmdResult) getResult {
	t.Helper()
	out := strings.TrimSpace(res.stdout)
	var g getResult
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("ferry get --json: stdout is not one JSON object: %v\n%s", err, res)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &fields); err != nil {
		t.Fatalf("ferry get --json: %v", err)
	}
	// A successful run reports everything; a failed one at least says what
	// it tried and why it failed.
	required := []string{"url", "path", "size", "size_download", "resumed_from",
		"http_version", "time_total", "speed_download", "sha256", "retries"}
	if res.exitCode != 0 {
		required = []string{"url", "path", "error"}
	}
	var missing []string
	for _, k := range required {
		if _, ok := fields[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("ferry get --json: missing fields %v in %s", missing, out)
	}
	if res.exitCode == 0 && g.Error != nil && string(g.Error.raw) != "null" {
		t.Errorf("ferry get --json: exit 0 but error = %s", g.Error)
	}
	return g
}

// --- servers ----------------------------------------------------------------

// stopPeer stops a server when the test ends: trouble stopping it is
// logged, and a server that outlived SIGKILL fails the test.
func stopPeer(t testing.TB, s *peer.Server) {
	if err := s.Stop(); err != nil {
		if errors.Is(err, peer.ErrStillRunning) {
			t.Errorf("stop: %v", err)
		} else {
			t.Logf("stop: %v", err)
		}
	}
}

// nginxServer is an nginx started by a test on a loopback port.
type nginxServer struct {
	*peer.Nginx        // URL serves root at /
	SlowURL     string // same files under /slow/, rate limited per connection
}

type nginxOptions struct {
	root      string          // directory served at / (default dataDir)
	limitRate string          // limit_rate of /slow/ (default "20m")
	locations []peer.Location // served besides / and /slow/
}

// startNginx starts nginx on a free loopback port, with an access log, and
// stops it when the test ends.
func startNginx(t testing.TB, opt nginxOptions) *nginxServer {
	t.Helper()
	bin := needPeer(t, "nginx")
	if opt.root == "" {
		opt.root = dataDir
	}
	if opt.limitRate == "" {
		opt.limitRate = "20m"
	}
	ng, err := peer.StartNginx(context.Background(), peer.NginxConfig{
		Bin:       bin,
		Root:      opt.root,
		Locations: append([]peer.Location{{Path: "/slow/", LimitRate: opt.limitRate}}, opt.locations...),
		AccessLog: true,
	})
	if err != nil {
		t.Fatalf("nginx did not start: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx logs:\n%s\nnginx access.log:\n%s",
				tail(ng.Logs(), 4000), tail(strings.Join(ng.AccessLog(), "\n"), 4000))
		}
		stopPeer(t, ng.Server)
	})
	return &nginxServer{Nginx: ng, SlowURL: ng.URL + "/slow"}
}

// startFerryServe starts `ferry serve --root root` on a free loopback port
// (with --tls-self-signed when useTLS is set) and stops it when the test
// ends.
func startFerryServe(t testing.TB, root string, useTLS bool) *peer.Server {
	t.Helper()
	s, err := peer.StartFerryServe(context.Background(), peer.FerryServeConfig{Bin: ferryBin, Root: root, TLS: useTLS})
	if err != nil {
		t.Fatalf("ferry serve did not start: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ferry serve log:\n%s", tail(s.Logs(), 4000))
		}
		stopPeer(t, s)
	})
	return s
}
