package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/bgapi"
)

// TestCrashChild is the daemon the crash test kills: it runs only when
// the test re-executes itself with FERRY_CRASH_DAEMON=state|socket.
func TestCrashChild(t *testing.T) {
	spec := os.Getenv("FERRY_CRASH_DAEMON")
	if spec == "" {
		t.Skip("runs as the crash test's child")
	}
	state, socket, _ := strings.Cut(spec, "|")
	cfg := Config{StateDir: state, Socket: socket, MaxTasks: 3, RetryWait: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Session = ferry.DefaultConfig()
	cfg.Session.Retry = ferry.RetryPolicy{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond}
	if err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
}

// startCrashChild starts a daemon process on state and socket, to be
// killed.
func startCrashChild(t *testing.T, state, socket string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), "FERRY_CRASH_DAEMON="+state+"|"+socket)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := bgapi.NewClient(socket)
	defer c.Close()
	if err := c.WaitReady(context.Background(), testTimeout); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("daemon child: %v", err)
	}
	return cmd
}

// kill -9 of the daemon at random moments, five times, and of the client
// reading the events each time too: every task completes with the right
// bytes, and each has exactly one completion event.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a daemon process")
	}
	state := t.TempDir()
	socket := filepath.Join(shortDir(t), "d.sock")
	start := func() *exec.Cmd { return startCrashChild(t, state, socket) }
	child := start()
	defer func() { child.Process.Kill(); child.Wait() }()

	c := bgapi.NewClient(socket)
	defer c.Close()
	const n = 8
	var sums = map[string]string{}
	var paths = map[string]string{}
	out := t.TempDir()
	for i := range n {
		srv := ferrytest.NewServer(t, ferrytest.Size(int64(1<<20+i*4096)), ferrytest.Throttle(768<<10))
		p := filepath.Join(out, "f"+string(rune('a'+i)))
		tk, err := c.Create(context.Background(), "crash", bgapi.NewTask{Get: &bgapi.GetRequest{URL: srv.URL + "/file", Path: p}})
		if err != nil {
			t.Fatal(err)
		}
		sums[tk.ID], paths[tk.ID] = srv.SHA256(), p
	}

	seen := map[uint64]bgapi.Event{} // what the clients received, by seq
	var acked uint64
	readSome := func(ctx context.Context, follow bool) {
		c := bgapi.NewClient(socket)
		defer c.Close()
		c.Events(ctx, "crash", bgapi.EventsOptions{After: acked, Follow: follow, Attach: true}, func(e bgapi.Event) error {
			seen[e.Seq] = e
			if rand.IntN(3) == 0 { // acknowledged now and then, as a client that got through it
				if c.Ack(context.Background(), "crash", e.Seq) == nil {
					acked = e.Seq
				}
			}
			return nil
		})
	}
	for kill := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(200+rand.IntN(600))*time.Millisecond)
		readSome(ctx, true) // the client runs until the crash
		cancel()
		child.Process.Signal(syscall.SIGKILL)
		child.Wait()
		t.Logf("kill %d: %d events seen, acked up to %d", kill+1, len(seen), acked)
		child = start()
	}
	for id := range sums {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		tk, err := c.Wait(ctx, id)
		cancel()
		if err != nil || tk.State != bgapi.Done {
			t.Fatalf("task %s: %+v %v", id, tk, err)
		}
		if got := ferrytest.FileSHA256(t, paths[id]); got != sums[id] {
			t.Fatalf("task %s: sha %s, want %s", id, got, sums[id])
		}
	}
	// Every task is done: what is kept is the whole log, read to its end.
	readSome(context.Background(), false)
	done := map[string]int{}
	for seq := uint64(1); seq <= uint64(len(seen)); seq++ {
		e, ok := seen[seq]
		if !ok {
			t.Fatalf("event %d never reached a client (%d seen)", seq, len(seen))
		}
		if e.Type == bgapi.EventDone {
			done[e.Task]++
		}
	}
	for id := range sums {
		if done[id] != 1 {
			t.Errorf("task %s has %d completion events", id, done[id])
		}
	}
}

// kill -9 of the daemon at random moments while a client queues tasks as
// fast as it can, forty times: every task whose creation was answered is
// there after the restart, with its created event, and the journal is
// sound each time (a damaged one would not start).
func TestCrashWhileQueuing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a daemon process")
	}
	state := t.TempDir()
	socket := filepath.Join(shortDir(t), "d.sock")
	rng := rand.New(rand.NewPCG(7, 11))
	later := time.Now().Add(time.Hour) // queued, never run
	acked := map[string]string{}       // task -> session
	unanswered := 0
	const kills = 40
	for range kills {
		child := startCrashChild(t, state, socket)
		c := bgapi.NewClient(socket)
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				session := fmt.Sprintf("q%d", i%3)
				tk, err := c.Create(context.Background(), session, bgapi.NewTask{NotBefore: later,
					Get: &bgapi.GetRequest{URL: "http://127.0.0.1:1/f", Path: "/nonexistent/" + session}})
				if err != nil {
					unanswered++
					return // the daemon is gone
				}
				acked[tk.ID] = session
			}
		}()
		time.Sleep(time.Duration(5+rng.IntN(100)) * time.Millisecond) // a random moment, not a wait for anything
		child.Process.Signal(syscall.SIGKILL)
		child.Wait()
		close(stop)
		<-done
		c.Close()
	}
	child := startCrashChild(t, state, socket)
	defer func() { child.Process.Kill(); child.Wait() }()
	c := bgapi.NewClient(socket)
	defer c.Close()
	ts, err := c.Tasks(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, tk := range ts {
		have[tk.ID] = tk.Session
	}
	created := map[string]bool{}
	for _, s := range []string{"q0", "q1", "q2"} {
		for _, e := range collect(t, c, s, 0) {
			if e.Type == bgapi.EventCreated {
				created[e.Task] = true
			}
		}
	}
	lost := 0
	for id, s := range acked {
		if have[id] != s || !created[id] {
			lost++
			t.Errorf("task %s of session %s, answered, is gone after a kill", id, s)
		}
	}
	t.Logf("%d kill -9s while queuing: %d tasks answered, %d requests cut off by the kill, %d lost; %d tasks in the journal",
		kills, len(acked), unanswered, lost, len(ts))
}
