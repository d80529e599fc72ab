package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

func open(t testing.TB, path string) *Journal {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func tmpJournal(t testing.TB) (*Journal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.db")
	return open(t, path), path
}

func mustCreate(t testing.TB, j *Journal, session, kind string) (*Task, Event) {
	t.Helper()
	tk, ev, err := j.Create(&Task{Session: session, Kind: kind, Request: json.RawMessage(`{"url":"http://x/` + kind + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	return tk, ev
}

// setState returns an Update function that moves a task to s.
func setState(s bgapi.State) func(*Task) error {
	return func(t *Task) error { t.State = s; return nil }
}

func seqs(evs []Event) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

func ids(ts []*Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	j, _ := tmpJournal(t)
	nb := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	a, ev, err := j.Create(&Task{Session: "s1", Kind: "get", Request: json.RawMessage(`{"u":1}`), Priority: 5, NotBefore: nb})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "t000000000001" || a.State != bgapi.Queued || a.Created.IsZero() || !a.Updated.Equal(a.Created) {
		t.Fatalf("created task = %+v", a)
	}
	if ev.Seq != 1 || ev.Session != "s1" || ev.Task != a.ID || ev.Type != "created" || ev.Time.IsZero() {
		t.Fatalf("created event = %+v", ev)
	}
	b, _ := mustCreate(t, j, "s2", "put")
	c, _ := mustCreate(t, j, "s1", "hls")
	if b.ID != "t000000000002" || c.ID != "t000000000003" {
		t.Fatalf("IDs %s %s", b.ID, c.ID)
	}

	got, err := j.Task(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != "get" || string(got.Request) != `{"u":1}` || got.Priority != 5 || !got.NotBefore.Equal(nb) || got.Session != "s1" {
		t.Fatalf("Task = %+v", got)
	}

	next := time.Now().Add(time.Minute).UTC()
	u, uev, err := j.Update(a.ID, func(t *Task) error {
		t.State, t.NextTry, t.Tries, t.Error = bgapi.Waiting, next, 2, "network down"
		return nil
	}, &Event{Type: "waiting", Data: json.RawMessage(`{"retry_in":60}`)})
	if err != nil {
		t.Fatal(err)
	}
	if u.State != bgapi.Waiting || u.Tries != 2 || !u.NextTry.Equal(next) || u.Updated.Before(u.Created) {
		t.Fatalf("updated = %+v", u)
	}
	if uev.Seq != 3 || uev.Task != a.ID || uev.Session != "s1" || string(uev.Data) != `{"retry_in":60}` {
		t.Fatalf("update event = %+v", uev)
	}
	// An update without an event appends nothing.
	if _, zev, err := j.Update(a.ID, func(t *Task) error { t.Priority = 9; return nil }, nil); err != nil || zev.Seq != 0 {
		t.Fatalf("Update without event: %+v, %v", zev, err)
	}
	got, _ = j.Task(a.ID)
	if got.Priority != 9 || got.State != bgapi.Waiting || got.Error != "network down" {
		t.Fatalf("after updates = %+v", got)
	}

	evs, err := j.Events("s1", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs(evs), []uint64{1, 2, 3}) || evs[1].Task != c.ID || evs[2].Type != "waiting" {
		t.Fatalf("events = %+v", evs)
	}
	if evs, _ := j.Events("s1", 1, 1); !slices.Equal(seqs(evs), []uint64{2}) {
		t.Fatalf("Events(after 1, limit 1) = %v", seqs(evs))
	}
	if evs, _ := j.Events("s1", 3, 10); len(evs) != 0 {
		t.Fatalf("Events past the end = %v", seqs(evs))
	}
	if evs, _ := j.Events("nobody", 0, 10); len(evs) != 0 {
		t.Fatalf("Events of unknown session = %v", evs)
	}

	if ts, _ := j.Tasks("s1"); !slices.Equal(ids(ts), []string{a.ID, c.ID}) {
		t.Fatalf("Tasks(s1) = %v", ids(ts))
	}
	if ts, _ := j.Tasks(""); !slices.Equal(ids(ts), []string{a.ID, b.ID, c.ID}) {
		t.Fatalf("Tasks() = %v", ids(ts))
	}
	if ts, err := j.Tasks("nobody"); len(ts) != 0 || err != nil {
		t.Fatalf("Tasks(nobody) = %v, %v", ts, err)
	}

	if _, _, err := j.Update(b.ID, setState(bgapi.Done), &Event{Type: "done"}); err != nil {
		t.Fatal(err)
	}
	if ts, _ := j.Unfinished(); !slices.Equal(ids(ts), []string{a.ID, c.ID}) {
		t.Fatalf("Unfinished = %v", ids(ts))
	}
	// Back out of a terminal state (a retry of a failed task) makes it unfinished again.
	if _, _, err := j.Update(b.ID, setState(bgapi.Queued), &Event{Type: "resumed"}); err != nil {
		t.Fatal(err)
	}
	if ts, _ := j.Unfinished(); !slices.Equal(ids(ts), []string{a.ID, b.ID, c.ID}) {
		t.Fatalf("Unfinished = %v", ids(ts))
	}

	if last, _ := j.LastSeq("s1"); last != 3 {
		t.Fatalf("LastSeq(s1) = %d", last)
	}
	if last, _ := j.LastSeq("s2"); last != 3 {
		t.Fatalf("LastSeq(s2) = %d", last)
	}
	if last, err := j.LastSeq("nobody"); last != 0 || err != nil {
		t.Fatalf("LastSeq(nobody) = %d, %v", last, err)
	}

	if _, err := j.Task("t999"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Task(unknown): %v", err)
	}
	if _, _, err := j.Update("t999", setState(bgapi.Done), &Event{Type: "done"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update(unknown): %v", err)
	}
}

func TestRequestOmitted(t *testing.T) {
	j, _ := tmpJournal(t)
	tk, _, err := j.Create(&Task{Session: "s"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := j.Task(tk.ID)
	if got.Request != nil || got.Result != nil {
		t.Fatalf("absent Request/Result came back as %q / %q", got.Request, got.Result)
	}
}

func TestCreateInputs(t *testing.T) {
	j, _ := tmpJournal(t)
	in := &Task{ID: "mine", Session: "s", State: bgapi.Paused, Request: json.RawMessage(`[1]`)}
	tk, _, err := j.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	if tk.ID == "mine" || tk.State != bgapi.Paused || in.ID != "mine" {
		t.Fatalf("Create returned %+v and left input %+v", tk, in)
	}
	in.Request[0] = '{'
	if got, _ := j.Task(tk.ID); string(got.Request) != `[1]` || string(tk.Request) != `[1]` {
		t.Fatal("stored task aliases the caller's Request")
	}
	if _, _, err := j.Create(&Task{Session: "s", State: "bogus"}); err == nil {
		t.Fatal("Create accepted an unknown state")
	}
	if _, _, err := j.Create(&Task{Session: "s", Request: json.RawMessage(`{not json`)}); err == nil {
		t.Fatal("Create accepted an invalid Request")
	}
	if _, _, err := j.Update(tk.ID, func(t *Task) error { t.Session = "other"; return nil }, nil); err == nil {
		t.Fatal("Update moved a task to another session")
	}
	if _, _, err := j.Update(tk.ID, nil, &Event{}); err == nil {
		t.Fatal("Update accepted an event without a type")
	}
	if last, _ := j.LastSeq("s"); last != 1 {
		t.Fatalf("failed calls appended events: LastSeq = %d", last)
	}
}

func TestCreateMany(t *testing.T) {
	j, _ := tmpJournal(t)
	mustCreate(t, j, "a", "get")
	ts, evs, err := j.CreateMany([]*Task{{Session: "a"}, {Session: "b"}, {Session: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(ts), []string{"t000000000002", "t000000000003", "t000000000004"}) {
		t.Fatalf("IDs = %v", ids(ts))
	}
	if !slices.Equal(seqs(evs), []uint64{2, 1, 3}) || evs[1].Session != "b" || evs[2].Task != ts[2].ID {
		t.Fatalf("events = %+v", evs)
	}
	// One bad task: nothing is stored.
	if _, _, err := j.CreateMany([]*Task{{Session: "a"}, {Session: "bad/one"}}); err == nil {
		t.Fatal("CreateMany accepted an invalid session")
	}
	if _, _, err := j.CreateMany([]*Task{{Session: "a"}, {Session: "a", Request: json.RawMessage(`{`)}}); err == nil {
		t.Fatal("CreateMany accepted an invalid request")
	}
	if all, _ := j.Tasks(""); len(all) != 4 {
		t.Fatalf("%d tasks after failed CreateMany, want 4", len(all))
	}
	if last, _ := j.LastSeq("a"); last != 3 {
		t.Fatalf("LastSeq(a) = %d after failed CreateMany, want 3", last)
	}
	// The aborted transaction did not consume task IDs either.
	if tk, _ := mustCreate(t, j, "a", "get"); tk.ID != "t000000000005" {
		t.Fatalf("next ID = %s", tk.ID)
	}
}

func TestUpdateErrorChangesNothing(t *testing.T) {
	j, _ := tmpJournal(t)
	tk, _ := mustCreate(t, j, "s", "get")
	boom := errors.New("boom")
	_, ev, err := j.Update(tk.ID, func(t *Task) error {
		t.State, t.Error = bgapi.Failed, "half-applied"
		return boom
	}, &Event{Type: "failed"})
	if !errors.Is(err, boom) || ev.Seq != 0 || ev.Type != "" {
		t.Fatalf("Update = %+v, %v; want boom", ev, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic in f not propagated")
			}
		}()
		j.Update(tk.ID, func(t *Task) error { t.State = bgapi.Done; panic("f panics") }, &Event{Type: "done"})
	}()
	got, _ := j.Task(tk.ID)
	if got.State != bgapi.Queued || got.Error != "" || !got.Updated.Equal(tk.Updated) {
		t.Fatalf("task changed by failed Updates: %+v", got)
	}
	if last, _ := j.LastSeq("s"); last != 1 {
		t.Fatalf("LastSeq = %d, want 1 (no event appended)", last)
	}
	if evs, _ := j.Events("s", 0, 0); len(evs) != 1 {
		t.Fatalf("events = %+v", evs)
	}
	if _, ev, err := j.Update(tk.ID, setState(bgapi.Running), &Event{Type: "running"}); err != nil || ev.Seq != 2 {
		t.Fatalf("next event = %+v, %v; want seq 2", ev, err)
	}
}

func TestAckAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := mustCreate(t, j, "s", "get")
	for _, st := range []bgapi.State{bgapi.Running, bgapi.Paused, bgapi.Running} {
		if _, _, err := j.Update(a.ID, setState(st), &Event{Type: string(st)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Ack("s", 5); err == nil {
		t.Fatal("Ack beyond LastSeq accepted")
	}
	if err := j.Ack("nobody", 1); err == nil {
		t.Fatal("Ack of a session without events accepted")
	}
	if err := j.Ack("nobody", 0); err != nil {
		t.Fatalf("Ack(nobody, 0): %v", err)
	}
	if err := j.Ack("s", 3); err != nil {
		t.Fatal(err)
	}
	if err := j.Ack("s", 2); err != nil {
		t.Fatalf("Ack below the current ack: %v", err)
	}
	if acked, _ := j.Acked("s"); acked != 3 {
		t.Fatalf("Acked = %d", acked)
	}
	if evs, _ := j.Events("s", 0, 0); !slices.Equal(seqs(evs), []uint64{4}) {
		t.Fatalf("events after ack = %v", seqs(evs))
	}
	if err := j.Ack("s", 4); err != nil {
		t.Fatal(err)
	}
	if evs, _ := j.Events("s", 0, 0); len(evs) != 0 {
		t.Fatalf("events after full ack = %v", seqs(evs))
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = open(t, path)
	if last, _ := j.LastSeq("s"); last != 4 {
		t.Fatalf("LastSeq after reopen = %d", last)
	}
	if acked, _ := j.Acked("s"); acked != 4 {
		t.Fatalf("Acked after reopen = %d", acked)
	}
	b, ev := mustCreate(t, j, "s", "put")
	if b.ID != "t000000000002" || ev.Seq != 5 {
		t.Fatalf("after reopen: task %s, event seq %d; want t000000000002, 5", b.ID, ev.Seq)
	}
	if got, _ := j.Task(a.ID); got.State != bgapi.Running {
		t.Fatalf("state after reopen = %s", got.State)
	}
	if ts, _ := j.Unfinished(); !slices.Equal(ids(ts), []string{a.ID, b.ID}) {
		t.Fatalf("Unfinished after reopen = %v", ids(ts))
	}
	if evs, _ := j.Events("s", 0, 0); !slices.Equal(seqs(evs), []uint64{5}) {
		t.Fatalf("events = %v", seqs(evs))
	}
}

func TestForgetAndSessions(t *testing.T) {
	j, _ := tmpJournal(t)
	a, _ := mustCreate(t, j, "s", "get") // 1
	b, _ := mustCreate(t, j, "s", "get") // 2
	c, _ := mustCreate(t, j, "s", "get") // 3
	mustCreate(t, j, "other", "get")
	j.Update(a.ID, setState(bgapi.Done), &Event{Type: "done"})             // 4
	j.Update(b.ID, setState(bgapi.Failed), &Event{Type: "failed"})         // 5
	j.Update(b.ID, func(t *Task) error { t.Error = "x"; return nil }, nil) // no event: b's final event is still 5
	_ = c

	if n, err := j.Forget("s"); n != 0 || err != nil {
		t.Fatalf("Forget with nothing acked = %d, %v", n, err)
	}
	if err := j.Ack("s", 4); err != nil {
		t.Fatal(err)
	}
	if n, _ := j.Forget("s"); n != 1 {
		t.Fatalf("Forget = %d, want 1 (a)", n)
	}
	if _, err := j.Task(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("forgotten task: %v", err)
	}
	if err := j.Ack("s", 5); err != nil {
		t.Fatal(err)
	}
	if n, _ := j.Forget("s"); n != 1 {
		t.Fatalf("Forget = %d, want 1 (b)", n)
	}
	if ts, _ := j.Tasks("s"); !slices.Equal(ids(ts), []string{c.ID}) {
		t.Fatalf("tasks left = %v", ids(ts))
	}
	if ss, _ := j.Sessions(); !slices.Equal(ss, []string{"other", "s"}) {
		t.Fatalf("Sessions = %v", ss)
	}
	j.Update(c.ID, setState(bgapi.Canceled), &Event{Type: "canceled"}) // 6
	if ss, _ := j.Sessions(); !slices.Equal(ss, []string{"other", "s"}) {
		t.Fatalf("Sessions = %v", ss)
	}
	j.Ack("s", 6)
	j.Forget("s")
	if ss, _ := j.Sessions(); !slices.Equal(ss, []string{"other"}) {
		t.Fatalf("Sessions after forgetting s = %v", ss)
	}
	// The emptied session keeps its counters.
	if _, ev := mustCreate(t, j, "s", "get"); ev.Seq != 7 {
		t.Fatalf("seq after forgetting everything = %d, want 7", ev.Seq)
	}
}

func TestLocked(t *testing.T) {
	j, path := tmpJournal(t)
	j2, err := Open(path) // fails at once rather than waiting for the lock: a hang fails the test
	if !errors.Is(err, ErrLocked) {
		if j2 != nil {
			j2.Close()
		}
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j2 = open(t, path)
	if _, _, err := j2.Create(&Task{Session: "s"}); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidSession(t *testing.T) {
	j, _ := tmpJournal(t)
	for _, s := range []string{"", "a/b", strings.Repeat("x", 129), "tab\there", "nl\n", "\xff\xfe", "bell\a", "del\x7f"} {
		var ise *InvalidSessionError
		if _, _, err := j.Create(&Task{Session: s}); !errors.As(err, &ise) || ise.Session != s {
			t.Errorf("Create(session %q): %v", s, err)
		}
		if s == "" {
			continue // "" means all sessions in Tasks
		}
		checks := map[string]error{}
		_, checks["Tasks"] = j.Tasks(s)
		_, checks["Events"] = j.Events(s, 0, 1)
		_, checks["LastSeq"] = j.LastSeq(s)
		_, checks["Acked"] = j.Acked(s)
		checks["Ack"] = j.Ack(s, 0)
		_, checks["Forget"] = j.Forget(s)
		for name, err := range checks {
			if !errors.As(err, &ise) {
				t.Errorf("%s(%q): %v", name, s, err)
			}
		}
	}
	for _, s := range []string{"a", "user@host:1234", strings.Repeat("x", 128), "café ☕", "with space"} {
		if _, _, err := j.Create(&Task{Session: s}); err != nil {
			t.Errorf("Create(session %q): %v", s, err)
		}
	}
	if ts, _ := j.Tasks(""); len(ts) != 5 {
		t.Errorf("%d tasks, want 5", len(ts))
	}
}

func TestConcurrent(t *testing.T) {
	j, path := tmpJournal(t)
	const workers, perWorker = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			session := fmt.Sprintf("s%d", w%3)
			for i := range perWorker {
				tk, _, err := j.Create(&Task{Session: session, Kind: "get"})
				if err != nil {
					errs <- err
					return
				}
				// Every worker also bumps a shared task, to contend on one record.
				if _, _, err := j.Update("t000000000001", func(t *Task) error { t.Tries++; return nil }, nil); err != nil {
					errs <- err
					return
				}
				st := bgapi.Running
				if i%2 == 0 {
					st = bgapi.Done
				}
				if _, _, err := j.Update(tk.ID, setState(st), &Event{Type: string(st)}); err != nil {
					errs <- err
					return
				}
				if _, err := j.Events(session, 0, 5); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	j.Close()

	j = open(t, path)
	all, _ := j.Tasks("")
	if len(all) != workers*perWorker {
		t.Fatalf("%d tasks, want %d", len(all), workers*perWorker)
	}
	if all[0].Tries != workers*perWorker {
		t.Errorf("shared task Tries = %d, want %d (lost update)", all[0].Tries, workers*perWorker)
	}
	seen := map[string]bool{}
	total := 0
	for s := range 3 {
		session := fmt.Sprintf("s%d", s)
		evs, _ := j.Events(session, 0, 0)
		for i, e := range evs {
			if e.Seq != uint64(i+1) {
				t.Fatalf("%s: event %d has seq %d", session, i, e.Seq)
			}
			key := e.Task + "/" + e.Type
			if seen[key] {
				t.Fatalf("duplicate event %s", key)
			}
			seen[key] = true
		}
		total += len(evs)
	}
	if total != 2*workers*perWorker {
		t.Fatalf("%d events, want %d", total, 2*workers*perWorker)
	}
	if un, _ := j.Unfinished(); len(un) != workers*perWorker/2 {
		t.Fatalf("%d unfinished, want %d", len(un), workers*perWorker/2)
	}
}
