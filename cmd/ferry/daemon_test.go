package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// A damaged journal: the daemon refuses to start over it, says what to do
// and exits 1, and keeps refusing; ferry daemon --recover rebuilds it,
// keeping what is readable and marking what is lost as failed.
func TestDaemonDamagedJournal(t *testing.T) {
	e := startDaemon(t)
	dir := t.TempDir()
	var ids []string
	for _, name := range []string{"a", "b", "c"} {
		ids = append(ids, e.submit("bg", "get", e.origin+"/slow/"+name, "-o", filepath.Join(dir, name), "--session", "dmg", "--not-before", "1h"))
	}
	e.stop()

	// Task b's record no longer decodes.
	journal := filepath.Join(e.state, "ferry.db")
	b, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	rec := []byte(`"id":"` + ids[1] + `","session":"dmg","kind":"get","request":{`)
	i := bytes.Index(b, rec)
	if i < 0 {
		t.Fatalf("task %s's record is not in the journal", ids[1])
	}
	b[i+len(rec)-1] = '['
	os.WriteFile(journal, b, 0o600)

	for try := range 2 { // the first sets it aside, the second finds it awaiting recovery
		code, _, errs := e.ferry("daemon", "-q")
		if code != exitFailed || !strings.Contains(errs, "damaged") || !strings.Contains(errs, "ferry daemon --recover --state "+e.state) {
			t.Fatalf("daemon start %d over a damaged journal: exit %d\n%s", try+1, code, errs)
		}
	}
	copies, _ := filepath.Glob(journal + ".damaged-*")
	if len(copies) != 1 {
		t.Fatalf("damaged copies: %v", copies)
	}

	code, out, errs := e.ferry("daemon", "--recover")
	if code != exitOK || !strings.Contains(out, "2 tasks") || !strings.Contains(out, "lost 1 tasks") || !strings.Contains(out, ids[1]) {
		t.Fatalf("ferry daemon --recover: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(copies[0]); err != nil {
		t.Errorf("the damaged journal was not kept: %v", err)
	}
	if code, out, _ := e.ferry("daemon", "--recover"); code != exitOK || !strings.Contains(out, "nothing to recover") {
		t.Errorf("a second --recover: exit %d\n%s", code, out)
	}

	e2 := startDaemonAt(t, e)
	var tasks []bgapi.Task
	if err := json.Unmarshal([]byte(e2.must("ls", "--json", "--session", "dmg")), &tasks); err != nil {
		t.Fatal(err)
	}
	states := map[string]bgapi.State{}
	for _, tk := range tasks {
		states[tk.ID] = tk.State
	}
	if len(tasks) != 3 || states[ids[0]] != bgapi.Queued || states[ids[1]] != bgapi.Failed || states[ids[2]] != bgapi.Queued {
		t.Errorf("after the recovery: %v", states)
	}
	var evs []bgapi.Event
	for _, l := range strings.Split(strings.TrimSpace(e2.must("events", "--session", "dmg", "--json")), "\n") {
		var ev bgapi.Event
		if json.Unmarshal([]byte(l), &ev) == nil {
			evs = append(evs, ev)
		}
	}
	if n := len(evs); n == 0 || evs[n-1].Task != ids[1] || evs[n-1].Type != bgapi.EventFailed {
		t.Errorf("no failed event for the lost task: %+v", evs)
	}
}
