package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func init() {
	register(class{"journal", "a daemon journal holding queued tasks, emptied, cut short, with pages zeroed or bytes flipped, then the daemon started again", attackJournal})
	register(class{"daemon", "a daemon's state directory made group- or world-writable, its socket reached by another user, API requests that are not what they claim", attackDaemon})
}

// daemonProc is a running ferry daemon.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startDaemon starts ferry daemon on state and waits until it answers, or
// until it exits (ready is then false).
func startDaemon(ctx context.Context, e *env, state string) (d *daemonProc, ready bool, err error) {
	cmd := exec.CommandContext(ctx, e.bin, "daemon", "--state", state)
	cmd.Env = append(os.Environ(), "FERRY_SOCKET=")
	d = &daemonProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		return nil, false, err
	}
	go func() { d.done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.done:
			d.done <- err
			return d, false, nil
		default:
		}
		if res := runFerry(ctx, e, state, 10*time.Second, nil, "ls", "--state", state); res.code == 0 {
			return d, true, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.stop()
	return nil, false, fmt.Errorf("ferry daemon neither answered nor exited in 20 s:\n%s", tail(d.stderr.String(), 10))
}

// stop ends the daemon gracefully and returns its exit error.
func (d *daemonProc) stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		return fmt.Errorf("ferry daemon did not stop on SIGTERM")
	}
}

// exitCode is the daemon's exit status, once it exited.
func (d *daemonProc) exitCode() int {
	err := <-d.done
	d.done <- err
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// listTasks returns the IDs ferry ls shows for the session.
func listTasks(ctx context.Context, e *env, state, session string) ([]string, error) {
	res := runFerry(ctx, e, state, 20*time.Second, nil, "ls", "--state", state, "--session", session, "--json")
	if res.code != 0 {
		return nil, fmt.Errorf("ferry ls: exit %d: %s", res.code, tail(res.stderr, 3))
	}
	var ids []string
	dec := json.NewDecoder(bytes.NewReader(res.stdout))
	for dec.More() {
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("ferry ls --json: %w", err)
		}
		collectIDs(v, &ids)
	}
	return ids, nil
}

// collectIDs finds the "id" members of tasks in ls's JSON, a list or lines.
func collectIDs(v any, ids *[]string) {
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			collectIDs(x, ids)
		}
	case map[string]any:
		if id, ok := v["id"].(string); ok {
			*ids = append(*ids, id)
			return
		}
		for _, x := range v {
			collectIDs(x, ids)
		}
	}
}

// queuedState makes a state directory whose journal holds n queued tasks
// (held back a day by --not-before), and returns a copy of that journal.
func queuedState(ctx context.Context, e *env, n int) (state string, journal []byte, err error) {
	state = filepath.Join(e.mkdir("state"), "ferry")
	if err := os.Mkdir(state, 0o700); err != nil {
		return "", nil, err
	}
	d, ready, err := startDaemon(ctx, e, state)
	if err != nil {
		return "", nil, err
	}
	if !ready {
		return "", nil, fmt.Errorf("ferry daemon on a new state directory exited:\n%s", d.stderr)
	}
	for i := range n {
		res := runFerry(ctx, e, state, 20*time.Second, nil, "bg", "get", "--state", state, "--session", "s",
			"--not-before", "24h", "-o", filepath.Join(state, "..", fmt.Sprintf("out%d", i)), "http://127.0.0.1:9/f")
		if res.code != 0 {
			d.stop()
			return "", nil, fmt.Errorf("ferry bg get: exit %d: %s", res.code, res.stderr)
		}
	}
	if err := d.stop(); err != nil {
		return "", nil, fmt.Errorf("stopping the daemon: %w\n%s", err, d.stderr)
	}
	journal, err = os.ReadFile(filepath.Join(state, "ferry.db"))
	return state, journal, err
}

// damage is one way a journal gets hurt.
type damage struct {
	name string
	do   func(e *env, b []byte) []byte
}

const pageSize = 4096

var damages = []damage{
	{"emptied", func(*env, []byte) []byte { return nil }},
	{"cut short", func(e *env, b []byte) []byte { return b[:e.rng.IntN(len(b))] }},
	{"cut at a page", func(e *env, b []byte) []byte { return b[:pageSize*e.rng.IntN(len(b)/pageSize)] }},
	{"pages zeroed", func(e *env, b []byte) []byte {
		b = bytes.Clone(b)
		first := e.rng.IntN(len(b) / pageSize)
		for i := first * pageSize; i < min(len(b), (first+1+e.rng.IntN(4))*pageSize); i++ {
			b[i] = 0
		}
		return b
	}},
	{"bytes flipped", func(e *env, b []byte) []byte {
		b = bytes.Clone(b)
		for range 1 + e.rng.IntN(16) {
			b[e.rng.IntN(len(b))] ^= byte(1 + e.rng.IntN(255))
		}
		return b
	}},
	{"garbage over the start", func(e *env, b []byte) []byte {
		b = bytes.Clone(b)
		copy(b, e.randomBytes(min(len(b), pageSize*(1+e.rng.IntN(2)))))
		return b
	}},
}

func attackJournal(ctx context.Context, e *env, r *result) error {
	const tasks = 12
	state, pristine, err := queuedState(ctx, e, tasks)
	if err != nil {
		return err
	}
	db := filepath.Join(state, "ferry.db")
	for round := range e.n(60) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		dmg := damages[round%len(damages)]
		matches, _ := filepath.Glob(db + "*")
		for _, m := range matches {
			os.Remove(m)
		}
		hurt := dmg.do(e, pristine)
		if err := os.WriteFile(db, hurt, 0o600); err != nil {
			return err
		}
		r.inputs++
		what := fmt.Sprintf("journal %s (round %d)", dmg.name, round)
		d, ready, err := startDaemon(ctx, e, state)
		if err != nil {
			r.bad("%s: %v", what, err)
			continue
		}
		if ready {
			// It saw no damage: then every task must be there.
			ids, err := listTasks(ctx, e, state, "s")
			d.stop()
			if hasPanic(d.stderr.String()) {
				r.crash("%s: %s", what, tail(d.stderr.String(), 10))
			}
			if err != nil {
				r.bad("%s: the daemon started but %v", what, err)
			} else if len(ids) != tasks {
				r.loss("%s: the daemon started with %d of %d tasks and said nothing", what, len(ids), tasks)
			}
			continue
		}
		code, log := d.exitCode(), d.stderr.String()
		switch {
		case hasPanic(log):
			r.crash("%s: %s", what, tail(log, 10))
			continue
		case code == 0:
			r.bad("%s: the daemon exited 0 without serving", what)
		case !strings.Contains(log, "--recover"):
			r.bad("%s: the daemon exited %d without naming --recover: %s", what, code, tail(log, 2))
		}
		rec := runFerry(ctx, e, state, time.Minute, nil, "daemon", "--recover", "--state", state)
		if rec.crashed() {
			r.crash("%s: --recover: %s", what, tail(rec.stderr, 10))
			continue
		}
		if rec.code != 0 {
			r.bad("%s: --recover: exit %d: %s", what, rec.code, tail(rec.stderr, 3))
			continue
		}
		d, ready, err = startDaemon(ctx, e, state)
		if err != nil || !ready {
			r.bad("%s: after --recover the daemon does not start: %v %s", what, err, tail(d.stderrString(), 3))
			continue
		}
		if _, err := listTasks(ctx, e, state, "s"); err != nil {
			r.bad("%s: after --recover: %v", what, err)
		}
		d.stop()
		if hasPanic(d.stderr.String()) {
			r.crash("%s: after --recover: %s", what, tail(d.stderr.String(), 10))
		}
	}
	return nil
}

func (d *daemonProc) stderrString() string {
	if d == nil {
		return ""
	}
	return d.stderr.String()
}

func attackDaemon(ctx context.Context, e *env, r *result) error {
	// A state directory others may write in is refused.
	for _, mode := range []os.FileMode{0o770, 0o707, 0o777, 0o1777} {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		state := filepath.Join(e.mkdir("loose"), "ferry")
		os.Mkdir(state, 0o700)
		os.Chmod(state, mode)
		r.inputs++
		d, ready, err := startDaemon(ctx, e, state)
		if err != nil {
			r.bad("state %v: %v", mode, err)
			continue
		}
		if ready {
			d.stop()
			r.escape("the daemon ran with a state directory of mode %v", mode)
		} else if d.exitCode() == 0 {
			r.bad("state %v: exit 0", mode)
		}
	}
	state, _, err := queuedState(ctx, e, 1)
	if err != nil {
		return err
	}
	d, ready, err := startDaemon(ctx, e, state)
	if err != nil || !ready {
		return fmt.Errorf("daemon: %v %s", err, d.stderrString())
	}
	defer d.stop()
	sock := filepath.Join(state, "daemon.sock")
	if fi, err := os.Stat(state); err != nil || fi.Mode().Perm()&0o077 != 0 {
		r.escape("the state directory is %v", fi.Mode())
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		r.bad("no socket at %s", sock)
	}
	// Another user: reach the socket as nobody, with the directory opened
	// up so that only the daemon's own check stands in the way.
	if os.Geteuid() == 0 {
		os.Chmod(state, 0o711)
		os.Chmod(sock, 0o777)
		for range e.n(20) {
			r.inputs++
			cmd := exec.CommandContext(ctx, "curl", "-s", "-m", "5", "--unix-socket", sock, "http://d/v1/tasks")
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, _ := cmd.Output()
			if strings.Contains(string(out), `"id"`) {
				r.escape("another user read the daemon's tasks: %.80s", out)
			}
		}
		os.Chmod(state, 0o700)
	}
	// Hostile API bodies: each must be refused with a 4xx, never crash it.
	bodies := []string{"", "{", "[]", "null", `{"get":{}}`, `{"get":{"url":"file:///etc/passwd","path":"/tmp/x"}}`,
		`{"get":{"url":"http://x/f","path":"/tmp/x","connections":1000000}}`, `{"get":{"url":"http://x/f","path":"relative"}}`,
		`{"get":{"url":"http://x/f","path":"/tmp/x"},"put":{"url":"http://x/","path":"/tmp/y"}}`, `{"nope":{}}`,
		strings.Repeat(`{"a":`, 10000), `{"get":{"url":"http://x/` + strings.Repeat("s", 1<<20) + `","path":"/tmp/x"}}`,
		`{} {}`, "\xff\xfe", `{"priority":1e400,"get":{"url":"http://x/f","path":"/tmp/x"}}`}
	for range e.n(10) {
		for _, b := range bodies {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.inputs++
			cmd := exec.CommandContext(ctx, "curl", "-s", "-m", "5", "-o", os.DevNull, "-w", "%{http_code}",
				"--unix-socket", sock, "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@-", "http://d/v1/sessions/s/tasks")
			cmd.Stdin = strings.NewReader(b)
			out, _ := cmd.Output()
			if code := string(out); !strings.HasPrefix(code, "4") {
				r.bad("POST /v1/tasks %.40q: %s, want 4xx", b, code)
			}
		}
	}
	if hasPanic(d.stderr.String()) {
		r.crash("the daemon: %s", tail(d.stderr.String(), 10))
	}
	return nil
}
