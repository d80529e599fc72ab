//go:build interop

package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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

// uploadServer is `ferry serve --uploads DIR` started by a test.
type uploadServer struct {
	URL     string // base URL, no trailing slash
	Addr    string // host:port
	Uploads string // the --uploads directory
	log     string // path of its combined output
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *uploadServer) Kill() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Logs returns what the server logged so far.
func (s *uploadServer) Logs() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// startFerryUploads starts `ferry serve --uploads DIR extra...` on a free
// loopback port (trying again if another process takes the port first)
// and stops it, SIGTERM then SIGKILL, when the test ends.
func startFerryUploads(t *testing.T, extra ...string) *uploadServer {
	t.Helper()
	return startFerryUploadsIn(t, t.TempDir(), extra...)
}

// startFerryUploadsIn is startFerryUploads on a given uploads directory.
func startFerryUploadsIn(t *testing.T, uploads string, extra ...string) *uploadServer {
	t.Helper()
	root, logs := t.TempDir(), t.TempDir()
	var lastErr error
	for attempt := range 3 {
		port, err := peer.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		logPath := filepath.Join(logs, fmt.Sprintf("serve-%d.log", attempt))
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"serve", "--root", root, "--uploads", uploads, "--addr", addr}, extra...)
		cmd := exec.Command(ferryBin, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("start ferry serve: %v", err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); logf.Close(); close(done) }()
		stop := func() {
			select {
			case <-done:
				return
			default:
			}
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
		s := &uploadServer{URL: "http://" + addr, Addr: addr, Uploads: uploads, log: logPath, cmd: cmd, done: done}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err = peer.WaitHealthy(ctx, s.URL+"/healthz")
		cancel()
		if err == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("ferry serve log:\n%s", tail(s.Logs(), 6000))
				}
			})
			return s
		}
		stop()
		lastErr = fmt.Errorf("%w\n%s", err, tail(s.Logs(), 2000))
	}
	t.Fatalf("ferry serve --uploads did not start: %v", lastErr)
	return nil
}

// jsDir is the directory of the Node peers; `npm ci` there installs them.
func jsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("js")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// needTusJSClient returns node's path once tus-js-client is installed in
// interop/js, failing under CI=true and skipping loudly elsewhere when it
// is not.
func needTusJSClient(t *testing.T) string {
	t.Helper()
	node := needPeer(t, "node")
	pkg := filepath.Join(jsDir(t), "node_modules", "tus-js-client", "package.json")
	b, err := os.ReadFile(pkg)
	var meta struct{ Version string }
	if err == nil {
		err = json.Unmarshal(b, &meta)
	}
	if err == nil && meta.Version != "4.3.1" {
		err = fmt.Errorf("tus-js-client %s installed, want 4.3.1", meta.Version)
	}
	if err != nil {
		msg := fmt.Sprintf("tus-js-client 4.3.1 is not installed in %s (run `npm ci` there): %v", jsDir(t), err)
		if inCI() {
			t.Fatalf("%s; CI=true, so a missing peer is a failure", msg)
		}
		t.Skipf("!!! SKIPPED: %s; this test did NOT run !!!", msg)
	}
	return node
}

// tusJSResult is what interop/js/upload.mjs prints.
type tusJSResult struct {
	URL           string   `json:"url"`
	Size          int64    `json:"size"`
	OffsetAtStart int64    `json:"offsetAtStart"`
	Aborted       bool     `json:"aborted"`
	Requests      []string `json:"requests"`
	Interop       []string `json:"interop"`
	Error         string   `json:"error"`
}

// runTusJS runs upload.mjs with args and decodes its result.
func runTusJS(t *testing.T, node string, args ...string) (tusJSResult, cmdResult) {
	t.Helper()
	res := runCmd(t, 3*time.Minute, node, append([]string{filepath.Join(jsDir(t), "upload.mjs")}, args...)...)
	var out tusJSResult
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		t.Fatalf("upload.mjs printed no result: %v\n%s", err, res)
	}
	return out, res
}

// httpSHA256 downloads url and returns the hex sha-256 and size of the body.
func httpSHA256(t *testing.T, url string) (string, int64) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	f, err := os.CreateTemp(t.TempDir(), "download")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, resp.Body)
	f.Close()
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return ferrytest.FileSHA256(t, f.Name()), n
}

// checkStored checks that the upload at url holds the file with the given
// sha-256, both as served and as stored in the uploads directory.
func checkStored(t *testing.T, srv *uploadServer, url string, size int64, sum string) {
	t.Helper()
	got, n := httpSHA256(t, url)
	if n != size || got != sum {
		t.Errorf("GET %s: %d bytes, sha256 %s; want %d bytes, sha256 %s", url, n, got, size, sum)
	}
	id := url[strings.LastIndex(url, "/")+1:]
	assertSameFile(t, filepath.Join(srv.Uploads, id+".bin"), size, sum)
}

// dropProxy forwards TCP connections to upstream and cuts the first one
// after it has carried dropAfter bytes towards upstream: a connection lost
// in the middle of an upload. Later connections pass untouched.
type dropProxy struct {
	URL     string
	dropped chan struct{}
	rate    int64 // bytes per second towards upstream; 0: unlimited
}

// startSlowProxy forwards TCP connections to upstream at rate bytes per
// second towards upstream, so that an upload lasts long enough to be
// interrupted at a chosen point.
func startSlowProxy(t *testing.T, upstream string, rate int64) *dropProxy {
	return startProxy(t, upstream, -1, rate)
}

func startDropProxy(t *testing.T, upstream string, dropAfter int64) *dropProxy {
	return startProxy(t, upstream, dropAfter, 0)
}

func startProxy(t *testing.T, upstream string, dropAfter, rate int64) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{URL: "http://" + ln.Addr().String(), dropped: make(chan struct{}), rate: rate}
	var once sync.Once
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			conns.Store(c, true)
			conns.Store(u, true)
			limit := int64(-1)
			select {
			case <-p.dropped:
			default:
				limit = dropAfter
			}
			var src io.Reader = c
			if rate > 0 {
				src = &throttled{r: c, rate: rate, start: time.Now()}
			}
			wg.Go(func() {
				defer c.Close()
				defer u.Close()
				io.Copy(c, u)
			})
			wg.Go(func() {
				defer c.Close()
				defer u.Close()
				if limit < 0 {
					io.Copy(u, src)
					return
				}
				n, _ := io.CopyN(u, src, limit)
				if n == limit {
					once.Do(func() { close(p.dropped) })
				}
			})
		}
	})
	return p
}

// throttled reads at most rate bytes per second on average.
type throttled struct {
	r     io.Reader
	rate  int64
	start time.Time
	n     int64
}

func (t *throttled) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	if ahead := time.Duration(t.n*int64(time.Second)/t.rate) - time.Since(t.start); ahead > 0 {
		time.Sleep(ahead)
	}
	n, err := t.r.Read(p)
	t.n += int64(n)
	return n, err
}
