//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/internal/peer"
)

// The background daemon under fire: 50 transfers (downloads from nginx,
// uploads to ferry serve, two HLS streams from nginx) queued with `ferry
// bg` in one session, rate-limited to take about 30 s; the daemon is
// killed with SIGKILL five times at random moments and started again, and
// the client reading the session's events (`ferry events --follow --ack`)
// is killed each time too. At the end every transfer is complete with the
// right bytes, and the client has received exactly one completion event
// per task.
func TestDaemonKills(t *testing.T) {
	ffmpeg := needPeer(t, "ffmpeg")
	ng := startNginx(t, nginxOptions{})
	up := startFerryUploads(t)
	state := t.TempDir()
	sockDir, _ := os.MkdirTemp("", "fd")
	defer os.RemoveAll(sockDir)
	socket := filepath.Join(sockDir, "d.sock")
	logs := t.TempDir()

	daemonRuns := 0
	startDaemon := func() *exec.Cmd {
		daemonRuns++
		logf, _ := os.Create(filepath.Join(logs, fmt.Sprintf("daemon-%d.log", daemonRuns)))
		cmd := exec.Command(ferryBin, "daemon", "--state", state, "--socket", socket, "--limit-rate", "3M", "--max-tasks", "8")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := bgapi.NewClient(socket)
		defer c.Close()
		if err := c.WaitReady(context.Background(), 20*time.Second); err != nil {
			cmd.Process.Kill()
			t.Fatalf("ferry daemon: %v", err)
		}
		return cmd
	}
	d := startDaemon()
	defer func() { d.Process.Kill(); d.Wait() }()

	// The transfers: 30 downloads, 18 uploads, 2 HLS streams, ~90 MiB.
	type want struct {
		kind, sum, path string
		segments        int
	}
	wants := map[string]want{}
	bg := func(args ...string) string {
		res := runCmd(t, time.Minute, ferryBin, append([]string{"bg"}, append(args, "--session", "load", "--socket", socket)...)...)
		if res.exitCode != 0 {
			t.Fatalf("ferry bg: %s", res)
		}
		return strings.TrimSpace(res.stdout)
	}
	out := t.TempDir()
	for i := range 30 {
		name := fmt.Sprintf("daemon-get-%02d.bin", i)
		_, sum := fixture(t, name, int64(1<<20+i*37*1024))
		p := filepath.Join(out, name)
		id := bg("get", ng.URL+"/"+name, "-o", p)
		wants[id] = want{kind: "get", sum: sum, path: p}
	}
	for i := range 18 {
		name := fmt.Sprintf("daemon-put-%02d.bin", i)
		src, sum := fixture(t, name, int64(1<<20+i*53*1024))
		id := bg("put", src, up.URL+"/files/")
		wants[id] = want{kind: "put", sum: sum}
	}
	for _, kind := range []peer.HLSKind{peer.HLSTS, peer.HLSFMP4} {
		s := hlsStream(t, ffmpeg, kind)
		dir := filepath.Join(out, "hls-"+string(kind))
		id := bg("hls", ng.URL+"/"+s.Playlist, "-o", dir)
		wants[id] = want{kind: "hls", path: dir, segments: s.Segments}
	}
	if len(wants) != 50 {
		t.Fatalf("%d tasks queued", len(wants))
	}

	// The client: prints events and acknowledges each after printing.
	var mu sync.Mutex
	var lines []string
	clientRuns := 0
	startClient := func() (*exec.Cmd, chan struct{}) {
		clientRuns++
		cmd := exec.Command(ferryBin, "events", "--session", "load", "--follow", "--json", "--ack", "--socket", socket)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				mu.Lock()
				lines = append(lines, sc.Text())
				mu.Unlock()
			}
		}()
		return cmd, done
	}
	client, clientDone := startClient()
	for kill := range 5 {
		time.Sleep(time.Duration(2000+rand.IntN(3500)) * time.Millisecond)
		d.Process.Signal(syscall.SIGKILL)
		d.Wait()
		client.Process.Signal(syscall.SIGKILL)
		client.Wait()
		<-clientDone
		mu.Lock()
		t.Logf("kill %d at %d events read", kill+1, len(lines))
		mu.Unlock()
		d = startDaemon()
		client, clientDone = startClient()
	}

	res := runCmd(t, 4*time.Minute, ferryBin, "wait", "--session", "load", "--json", "--socket", socket)
	if res.exitCode != 0 {
		t.Fatalf("ferry wait: %s", res)
	}
	var tasks []bgapi.Task
	if err := json.Unmarshal([]byte(res.stdout), &tasks); err != nil {
		t.Fatalf("wait --json: %v", err)
	}
	for _, tk := range tasks {
		w, ok := wants[tk.ID]
		if !ok || tk.State != bgapi.Done || tk.Result == nil {
			t.Fatalf("task %+v", tk)
		}
		switch w.kind {
		case "get":
			if got := ferrytest.FileSHA256(t, w.path); got != w.sum {
				t.Errorf("download %s: sha %s, want %s", w.path, got, w.sum)
			}
		case "put":
			if got, _ := httpSHA256(t, tk.Result.Location); got != w.sum {
				t.Errorf("upload %s: stored sha %s, want %s", tk.Result.Location, got, w.sum)
			}
		case "hls":
			if tk.Result.Segments != w.segments {
				t.Errorf("hls %s: %d segments, want %d", w.path, tk.Result.Segments, w.segments)
			}
			if _, err := os.Stat(filepath.Join(w.path, "index.m3u8")); err != nil {
				t.Error(err)
			}
		}
	}
	if len(tasks) != 50 {
		t.Fatalf("%d tasks done, want 50", len(tasks))
	}

	// Let the last client catch up, then count what it was told.
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs := collectEvents(t, &mu, &lines)
		if len(evs.done) == 50 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	client.Process.Signal(syscall.SIGKILL)
	client.Wait()
	<-clientDone
	evs := collectEvents(t, &mu, &lines)
	for id := range wants {
		if n := len(evs.done[id]); n != 1 {
			t.Errorf("task %s: %d completion events, want exactly one", id, n)
		}
	}
	t.Logf("%d event lines over %d client runs (%d distinct events, %d delivered again after a kill); %d daemon runs",
		evs.lines, clientRuns, evs.distinct, evs.lines-evs.distinct, daemonRuns)
	// Everything was acknowledged: a new reader gets nothing.
	left := runCmd(t, time.Minute, ferryBin, "events", "--session", "load", "--json", "--socket", socket)
	if left.exitCode != 0 || strings.TrimSpace(left.stdout) != "" {
		// The last client may have been killed between printing and
		// acknowledging; what is left must then be events it printed.
		for _, l := range strings.Split(strings.TrimSpace(left.stdout), "\n") {
			var e bgapi.Event
			if json.Unmarshal([]byte(l), &e) != nil || !evs.seen[e.Seq] {
				t.Errorf("an event the client never got is left: %q", l)
			}
		}
	}
}

type eventCount struct {
	lines, distinct int
	seen            map[uint64]bool
	done            map[string]map[uint64]bool // task -> seqs of its done events
}

// collectEvents counts the client's lines: events by seq, each printed at
// least once.
func collectEvents(t *testing.T, mu *sync.Mutex, lines *[]string) eventCount {
	mu.Lock()
	defer mu.Unlock()
	c := eventCount{seen: map[uint64]bool{}, done: map[string]map[uint64]bool{}}
	for _, l := range *lines {
		var e bgapi.Event
		if err := json.Unmarshal(bytes.TrimSpace([]byte(l)), &e); err != nil {
			t.Fatalf("event line %q: %v", l, err)
		}
		c.lines++
		if !c.seen[e.Seq] {
			c.distinct++
			c.seen[e.Seq] = true
		}
		if e.Type == bgapi.EventDone {
			if c.done[e.Task] == nil {
				c.done[e.Task] = map[uint64]bool{}
			}
			c.done[e.Task][e.Seq] = true
		}
	}
	return c
}

// A background session starts `ferry daemon` when none runs; the daemon
// outlives the session. The same identifier from a second process gets the
// documented error while the first holds it.
func TestBackgroundSessionStartsDaemon(t *testing.T) {
	ng := startNginx(t, nginxOptions{})
	_, sum := fixture(t, "bg-session.bin", 3<<20)
	state := t.TempDir()
	sockDir, _ := os.MkdirTemp("", "fd")
	defer os.RemoveAll(sockDir)
	dc := ferry.DaemonConfig{StateDir: state, Socket: filepath.Join(sockDir, "d.sock"), Command: []string{ferryBin, "daemon"}}
	defer func() { // the daemon started below runs on its own: stop it
		c := bgapi.NewClient(dc.Socket)
		defer c.Close()
		if h, err := c.Health(context.Background()); err == nil {
			syscall.Kill(h.PID, syscall.SIGTERM)
		}
	}()
	s, err := ferry.NewSession(ferry.Config{Background: "cli-test", Daemon: dc})
	if err != nil {
		t.Fatalf("NewSession: %v (daemon log: %s)", err, readFile(filepath.Join(state, "daemon.log")))
	}
	path := filepath.Join(t.TempDir(), "out.bin")
	task, err := s.Download(context.Background(), ferry.DownloadRequest{URL: ng.URL + "/bg-session.bin", Path: path})
	if err != nil {
		t.Fatal(err)
	}

	// Another process asks for the same identifier: refused, clearly.
	res := runCmd(t, time.Minute, ferryBin, "events", "--session", "cli-test", "--follow", "--socket", dc.Socket)
	if res.exitCode != 1 || !strings.Contains(res.stderr, "attached by another process") {
		t.Errorf("a second process on the same identifier: %s", res)
	}
	if _, err := task.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := ferrytest.FileSHA256(t, path); got != sum {
		t.Fatalf("sha %s, want %s", got, sum)
	}
	// The daemon is still there for the next program.
	c := bgapi.NewClient(dc.Socket)
	defer c.Close()
	if _, err := c.Health(context.Background()); err != nil {
		t.Fatalf("the daemon did not outlive the session: %v", err)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// ferry bg starts a daemon when none runs, and the daemon is that ferry
// binary itself, not whichever ferry PATH finds first.
func TestBgStartsItsOwnDaemon(t *testing.T) {
	state := t.TempDir()
	sockDir, _ := os.MkdirTemp("", "fd")
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "d.sock")
	c := bgapi.NewClient(sock)
	defer c.Close()
	defer func() { // the daemon runs on its own: stop it
		if h, err := c.Health(context.Background()); err == nil {
			syscall.Kill(h.PID, syscall.SIGTERM)
		}
	}()
	res := runCmd(t, time.Minute, ferryBin, "bg", "get", "http://127.0.0.1:9/f", "-o", filepath.Join(t.TempDir(), "f"),
		"--session", "own", "--not-before", "1h", "--state", state, "--socket", sock)
	if res.exitCode != 0 {
		t.Fatalf("ferry bg get without a daemon: %s (daemon log: %s)", res, readFile(filepath.Join(state, "daemon.log")))
	}
	h, err := c.Health(context.Background())
	if err != nil {
		t.Fatalf("no daemon answers after ferry bg get: %v", err)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", h.PID))
	if want, _ := filepath.EvalSymlinks(ferryBin); err != nil || exe != want {
		t.Errorf("the daemon runs %s (%v), want %s", exe, err, want)
	}
	tasks, err := c.Tasks(context.Background(), "own")
	if err != nil || len(tasks) != 1 || tasks[0].ID != strings.TrimSpace(res.stdout) {
		t.Errorf("the daemon has %+v (%v), want the task %s", tasks, err, res.stdout)
	}
}
