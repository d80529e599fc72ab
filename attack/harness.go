package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

// token is the bearer token of every server the suite starts.
const token = "attack-token-0123456789"

// server is a running ferry serve.
type server struct {
	*peer.Server
	client *http.Client
}

// startServe starts ferry serve on root with more flags ("--name value"
// pairs). A flag the binary does not know is left out, so that an older
// build (-bin) is attacked with its own defaults.
func startServe(ctx context.Context, e *env, root, uploads string, args ...string) (*server, error) {
	help := runFerry(ctx, e, root, 30*time.Second, nil, "serve", "--help")
	var known []string
	for i := 0; i+1 < len(args); i += 2 {
		if strings.Contains(string(help.stdout)+help.stderr, args[i]+" ") {
			known = append(known, args[i], args[i+1])
		}
	}
	s, err := peer.StartFerryServe(ctx, peer.FerryServeConfig{Bin: e.bin, Root: root, Uploads: uploads, Args: known})
	if err != nil {
		return nil, err
	}
	return &server{Server: s, client: &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DisableKeepAlives: true},
	}}, nil
}

// alive reports whether the server still answers /healthz.
func (s *server) alive() bool {
	resp, err := s.client.Get(s.URL + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// panics reports whether the server's log shows a panic, even one net/http
// recovered from.
func (s *server) panics() bool { return hasPanic(s.Logs()) }

// check counts a crash when the server panicked or stopped answering, and
// says whether it is still usable.
func (s *server) check(r *result, after string) bool {
	if s.panics() {
		r.crash("ferry serve panicked after %s:\n%s", after, tail(s.Logs(), 20))
		return false
	}
	if !s.alive() {
		r.crash("ferry serve stopped answering after %s", after)
		return false
	}
	return true
}

func hasPanic(log string) bool {
	return strings.Contains(log, "panic:") || strings.Contains(log, "http: panic serving") ||
		strings.Contains(log, "goroutine ") && strings.Contains(log, "[running]")
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// do sends a request, authorized when auth is set, and returns the status
// and up to 64 MiB of the body.
func (s *server) do(method, path string, hdr http.Header, body io.Reader, auth bool) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, resp.Header, data, err
}

// raw sends request bytes as they are on a new connection and returns
// what came back until the server closed it or timeout passed.
func raw(addr string, request []byte, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(request); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	_, err = io.Copy(&b, io.LimitReader(c, 64<<20))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = nil
	}
	return b.Bytes(), err
}

// hostPort is the host:port of a URL like http://127.0.0.1:1234.
func hostPort(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
}

// cli is the outcome of one ferry command.
type cli struct {
	code   int // exit status; -1 when killed by a signal
	signal syscall.Signal
	stdout []byte
	stderr string
	killed bool // we ended it (timeout or on purpose)
}

// crashed reports whether the command panicked or died of a signal we
// did not send.
func (c cli) crashed() bool {
	return hasPanic(c.stderr) || (c.code < 0 && !c.killed)
}

// broke records a run of what that crashed or was still running when its
// time was up, and reports whether it did: what else it did then says
// nothing.
func (r *result) broke(c cli, what string) bool {
	switch {
	case c.crashed():
		r.crash("%s: %s", what, tail(c.stderr, 10))
	case c.killed:
		r.bad("%s: still running when its time was up (hung)", what)
	default:
		return false
	}
	return true
}

// runFerry runs the ferry binary with args in dir, giving up after timeout.
func runFerry(ctx context.Context, e *env, dir string, timeout time.Duration, stdin io.Reader, args ...string) cli {
	return runFerryWith(ctx, e, dir, timeout, nil, nil, args...)
}

// runFerryWith is runFerry that calls started once the process runs (it
// may kill it) and done with its state once it ended.
func runFerryWith(ctx context.Context, e *env, dir string, timeout time.Duration, started func(*os.Process), done func(*os.ProcessState), args ...string) cli {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+dir+"/.state", "NO_COLOR=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Start()
	if err == nil {
		if started != nil {
			started(cmd.Process)
		}
		err = cmd.Wait()
		if done != nil {
			done(cmd.ProcessState)
		}
	}
	res := cli{stdout: out.Bytes(), stderr: errb.String(), killed: ctx.Err() != nil}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.signal = ws.Signal()
		}
	default:
		res.code = -1
		res.stderr += "\n" + err.Error()
	}
	return res
}

// runKilled runs ferry and kills it with SIGKILL after d, unless it ended
// first; killed says whether the kill landed.
func runKilled(ctx context.Context, e *env, dir string, d time.Duration, args ...string) (res cli, killed bool) {
	var mu sync.Mutex
	var timer *time.Timer
	res = runFerryWith(ctx, e, dir, 5*time.Minute, func(p *os.Process) {
		mu.Lock()
		timer = time.AfterFunc(d, func() { p.Signal(syscall.SIGKILL) })
		mu.Unlock()
	}, nil, args...)
	mu.Lock()
	if timer != nil {
		timer.Stop()
	}
	mu.Unlock()
	killed = res.signal == syscall.SIGKILL
	if killed {
		res.killed = true
	}
	return res, killed
}

// fileSHA256 is the hex sha-256 of a file's content, "" when unreadable.
func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// randomBytes is n bytes from the class's generator.
func (e *env) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(e.rng.Uint32())
	}
	return b
}

// pick is a random element of xs.
func pick[T any](e *env, xs []T) T { return xs[e.rng.IntN(len(xs))] }

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
