package journal

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// crashEnv names the journal the child process writes; its presence makes
// TestCrashChild run.
const crashEnv = "JOURNAL_CRASH_CHILD"

var crashSessions = []string{"alpha", "beta", "gamma"}

// typeState maps the child's event types to the state each one sets: the
// child names every state-changing event after the new state.
func typeState(typ string) bgapi.State {
	if typ == "created" {
		return bgapi.Queued
	}
	return bgapi.State(typ)
}

// nextStates is the child's state machine.
var nextStates = map[bgapi.State][]bgapi.State{
	bgapi.Queued:  {bgapi.Running, bgapi.Canceled},
	bgapi.Running: {bgapi.Paused, bgapi.Waiting, bgapi.Done, bgapi.Failed},
	bgapi.Paused:  {bgapi.Running, bgapi.Canceled},
	bgapi.Waiting: {bgapi.Running, bgapi.Failed},
}

// TestCrashChild is the child of TestCrash: it writes to the journal in a
// tight loop until it is killed (or its bounds run out).
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only run as the child of TestCrash")
	}
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	live, err := j.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
		switch r := rand.IntN(10); {
		case r < 3 || len(live) == 0:
			s := crashSessions[rand.IntN(len(crashSessions))]
			if r == 0 {
				ts, _, err := j.CreateMany([]*Task{{Session: s, Kind: "get"}, {Session: s, Kind: "put"}, {Session: crashSessions[0], Kind: "hls"}})
				if err != nil {
					t.Fatal(err)
				}
				live = append(live, ts...)
				continue
			}
			tk, _, err := j.Create(&Task{Session: s, Kind: "get"})
			if err != nil {
				t.Fatal(err)
			}
			live = append(live, tk)
		default:
			k := rand.IntN(len(live))
			opts := nextStates[live[k].State]
			to := opts[rand.IntN(len(opts))]
			tk, _, err := j.Update(live[k].ID, setState(to), &Event{Type: string(to)})
			if err != nil {
				t.Fatal(err)
			}
			if to.Terminal() {
				live = slices.Delete(live, k, k+1)
			} else {
				live[k] = tk
			}
		}
	}
	j.Close()
}

// crashModel is what the consumer (the parent) has learnt from the events it
// read, across kills.
type crashModel struct {
	read      map[string]uint64 // session → last seq read
	events    map[string]map[uint64]Event
	created   map[string]uint64 // task → seq of its "created" event
	lastType  map[string]string // task → type of its latest event
	lastSeqOf map[string]uint64 // task → seq of its latest event
	sessionOf map[string]string // task → session
}

// TestCrash kills a writer with SIGKILL at random moments and checks, after
// each kill, that the reopened journal is consistent with the events a
// consumer read and acknowledged along the way.
func TestCrash(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	path := t.TempDir() + "/crash.db"
	m := &crashModel{
		read: map[string]uint64{}, events: map[string]map[uint64]Event{},
		created: map[string]uint64{}, lastType: map[string]string{}, lastSeqOf: map[string]uint64{},
		sessionOf: map[string]string{},
	}
	const kills = 5
	for round := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=60s")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			ok := false
			for sc.Scan() {
				if sc.Text() == "ready" && !ok {
					ok = true
					ready <- true
				}
			}
			if !ok {
				ready <- false
			}
		}()
		select {
		case ok := <-ready:
			if !ok {
				cmd.Wait()
				t.Fatalf("round %d: child exited before it was ready", round)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child not ready after 30s", round)
		}
		delay := time.Duration(50+rand.IntN(251)) * time.Millisecond
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("round %d: kill: %v", round, err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Logf("round %d: child was not killed (it finished first): %v", round, err)
		}
		n := m.check(t, path, round)
		t.Logf("round %d: killed after %v; %d events read so far", round, delay, n)
	}
	total := 0
	for _, s := range crashSessions {
		total += int(m.read[s])
	}
	if total == 0 {
		t.Fatal("the child wrote nothing")
	}
}

// check reopens the journal after a kill, verifies its invariants against
// the model, reads the new events, and acknowledges a random prefix of them.
// It returns how many events have been read in all.
func (m *crashModel) check(t *testing.T, path string, round int) int {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatalf("round %d: reopen: %v", round, err)
	}
	defer j.Close()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("round %d: "+format, append([]any{round}, args...)...)
	}
	total := 0
	for _, s := range crashSessions {
		last, err := j.LastSeq(s)
		if err != nil {
			fail("LastSeq(%s): %v", s, err)
		}
		acked, _ := j.Acked(s)
		if acked > last || acked > m.read[s] {
			fail("%s: acked %d, last %d, read %d", s, acked, last, m.read[s])
		}
		if last < m.read[s] {
			fail("%s: LastSeq %d went below events already read (%d)", s, last, m.read[s])
		}
		evs, err := j.Events(s, acked, 0)
		if err != nil {
			fail("Events(%s): %v", s, err)
		}
		if uint64(len(evs)) != last-acked {
			fail("%s: %d events between acked %d and last %d", s, len(evs), acked, last)
		}
		if m.events[s] == nil {
			m.events[s] = map[uint64]Event{}
		}
		for i, e := range evs {
			if e.Seq != acked+uint64(i)+1 || e.Session != s {
				fail("%s: event %d is %+v", s, acked+uint64(i)+1, e)
			}
			if e.Seq <= m.read[s] {
				// Read before the kill and not acknowledged: must be unchanged.
				old := m.events[s][e.Seq]
				if old.Task != e.Task || old.Type != e.Type || !old.Time.Equal(e.Time) {
					fail("%s: event %d changed from %+v to %+v", s, e.Seq, old, e)
				}
				continue
			}
			m.events[s][e.Seq] = e
			if e.Type == "created" {
				if prev, dup := m.created[e.Task]; dup {
					fail("task %s created twice (seq %d and %d)", e.Task, prev, e.Seq)
				}
				m.created[e.Task] = e.Seq
				m.sessionOf[e.Task] = s
			} else if _, ok := m.created[e.Task]; !ok {
				fail("%s: event %+v for a task never created", s, e)
			}
			m.lastType[e.Task], m.lastSeqOf[e.Task] = e.Type, e.Seq
		}
		m.read[s] = last
		total += int(last)
	}

	all, err := j.Tasks("")
	if err != nil {
		fail("Tasks: %v", err)
	}
	var unfinished []string
	for _, tk := range all {
		if _, ok := m.created[tk.ID]; !ok {
			fail("task %s has no created event (read or acknowledged)", tk.ID)
		}
		if want := typeState(m.lastType[tk.ID]); tk.State != want {
			fail("task %s is %s but its latest event (seq %d) says %s", tk.ID, tk.State, m.lastSeqOf[tk.ID], want)
		}
		if !tk.State.Terminal() {
			unfinished = append(unfinished, tk.ID)
		}
	}
	if len(all) != len(m.created) {
		fail("%d tasks in the journal, %d created events seen", len(all), len(m.created))
	}
	un, err := j.Unfinished()
	if err != nil {
		fail("Unfinished: %v", err)
	}
	if !slices.Equal(ids(un), unfinished) {
		fail("Unfinished = %v, want %v", ids(un), unfinished)
	}

	// Consume: acknowledge a random part of what was read, so later rounds
	// also check tasks whose created event is gone.
	for _, s := range crashSessions {
		acked, _ := j.Acked(s)
		if m.read[s] > acked {
			to := acked + uint64(rand.IntN(int(m.read[s]-acked)+1))
			if err := j.Ack(s, to); err != nil {
				fail("Ack(%s, %d): %v", s, to, err)
			}
			for q := acked + 1; q <= to; q++ {
				delete(m.events[s], q)
			}
		}
		// Housekeeping removes exactly the terminal tasks whose latest event
		// is now acknowledged.
		acked, _ = j.Acked(s)
		want := 0
		for id, seq := range m.lastSeqOf {
			if m.sessionOf[id] != s || seq > acked {
				continue
			}
			if typeState(m.lastType[id]).Terminal() {
				want++
				delete(m.created, id)
				delete(m.lastType, id)
				delete(m.lastSeqOf, id)
			}
		}
		n, err := j.Forget(s)
		if err != nil || n != want {
			fail("Forget(%s) = %d, %v; want %d", s, n, err, want)
		}
	}
	return total
}
