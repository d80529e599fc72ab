package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// startAttempts is how often a server on a free port is tried again
	// when it does not come up (another process may have taken the port).
	startAttempts = 3
	// readyTimeout bounds how long one attempt waits for /healthz.
	readyTimeout = 15 * time.Second
	// stopGrace is how long Stop waits after SIGTERM, and after SIGKILL.
	stopGrace = 5 * time.Second
)

// ErrStillRunning is in the error Stop returns when a server's process
// outlived SIGKILL.
var ErrStillRunning = errors.New("still running after SIGKILL")

// Server is a running peer server.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123, without
	// a trailing slash.
	URL string
	// Dir holds the server's configuration and logs; Stop removes it.
	Dir string
	// Netns is the network namespace the server runs in; "" is this
	// process's. Its URL is reachable from there (see DialContextIn).
	Netns string

	name string
	logs []string // files in Dir that Logs shows
	proc *process
}

// Stop ends the server: SIGTERM, then after 5s SIGKILL to its process
// group, and removes Dir. It returns an error when the server needed
// SIGKILL (one that wraps ErrStillRunning when that did not end it either)
// or Dir could not be removed. Stop may be called more than once.
func (s *Server) Stop() error {
	err := s.proc.stop()
	return errors.Join(err, os.RemoveAll(s.Dir))
}

// Logs returns what the server wrote to its log files so far, each file
// under a line with its name. It is empty after Stop.
func (s *Server) Logs() string {
	var b strings.Builder
	for _, name := range s.logs {
		data, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil || len(data) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s:\n%s", name, data)
		if data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// launcher starts a server's process listening on addr with its files in
// dir, and says which log files of dir describe it.
type launcher func(dir, addr string) (p *process, logs []string, err error)

// startServer starts the server launch describes on listen ("host:port";
// "" means 127.0.0.1:0). Port 0 picks a free port, and the start is tried
// up to startAttempts times in case another process takes it first. The
// server is ready when scheme://addr/healthz answers 200.
func startServer(ctx context.Context, name, scheme, listen string, launch launcher) (*Server, error) {
	return startServerIn(ctx, "", name, scheme, listen, launch)
}

// startServerIn is startServer for a server in the named network namespace
// ("" is this process's): the free port is looked up there, and /healthz
// is polled from there. launch must start the process in it (see
// startProcessIn).
func startServerIn(ctx context.Context, netns, name, scheme, listen string, launch launcher) (*Server, error) {
	return startServerAt(ctx, netns, name, scheme, listen, "/healthz", launch)
}

// startServerAt is startServerIn for a server that answers 200 at the path
// health (rather than /healthz) once it is ready.
func startServerAt(ctx context.Context, netns, name, scheme, listen, health string, launch launcher) (*Server, error) {
	return startServerWith(ctx, netns, name, scheme, listen, func(s *Server) (*http.Client, string) {
		return healthClientIn(netns), s.URL + health
	}, launch)
}

// startServerWith is startServerIn for a server whose readiness is seen
// by the client and URL poll returns answering 200: a proxy's, through it.
func startServerWith(ctx context.Context, netns, name, scheme, listen string, poll func(*Server) (*http.Client, string), launch launcher) (*Server, error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("%s: listen address: %w", name, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("%s: listen address %q: bad port", name, listen)
	}
	attempts := 1
	if port == 0 {
		attempts = startAttempts
	}
	var lastErr error
	for range attempts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := port
		if p == 0 {
			if p, err = freePortIn(netns, host); err != nil {
				return nil, err
			}
		}
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		dir, err := os.MkdirTemp("", "ferry-peer-"+name+"-")
		if err != nil {
			return nil, err
		}
		proc, logs, err := launch(dir, addr)
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		s := &Server{URL: scheme + "://" + addr, Dir: dir, Netns: netns, name: name, logs: logs, proc: proc}
		hctx, cancel := context.WithTimeoutCause(ctx, readyTimeout,
			fmt.Errorf("%s not ready after %v", name, readyTimeout))
		client, url := poll(s)
		err = proc.waitHealthy(hctx, client, url)
		cancel()
		if err == nil {
			return s, nil
		}
		lastErr = fmt.Errorf("%w\n%s", err, s.Logs())
		s.Stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, lastErr
}

// process is a long-running process (a server) in its own process group,
// with stdout and stderr in one log file.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, set before done is closed
}

func startProcess(logPath, bin string, args ...string) (*process, error) {
	return startProcessIn("", logPath, bin, args...)
}

// startProcessIn is startProcess for a process in the named network
// namespace ("" is this process's).
func startProcessIn(netns, logPath, bin string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	argv := NetnsExec(netns, append([]string{bin}, args...))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{name: filepath.Base(bin), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitHealthy is WaitHealthy that also gives up when the process exits.
func (p *process) waitHealthy(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-p.done:
			cancel(fmt.Errorf("%s exited before it was ready (%v)", p.name, p.err))
		case <-ctx.Done():
		}
	}()
	return waitHealthy(ctx, client, url)
}

// stop asks the process to quit (SIGTERM), then kills its process group.
func (p *process) stop() error {
	if p.exited() {
		return nil
	}
	var err error
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		err = fmt.Errorf("%s did not stop on SIGTERM within %v; killed it", p.name, stopGrace)
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			return fmt.Errorf("%s (pid %d): %w", p.name, p.cmd.Process.Pid, ErrStillRunning)
		}
	}
	// Workers of a master process share its group; make sure none is left.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	return err
}
