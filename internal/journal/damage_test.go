package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// sample is a journal written for the damage tests, and what it holds.
type sample struct {
	path  string
	file  []byte // the journal's bytes
	tasks map[string]*Task
	last  map[string]uint64 // session -> LastSeq
	top   uint64            // the greatest task number
	pages map[string][2]int // task -> the bytes of the page holding its record
}

// writeSample writes a journal of n tasks over three sessions, in every
// state, with events some of which are acknowledged: enough for the tasks
// bucket to span branch and leaf pages.
func writeSample(t testing.TB, dir string, n int) *sample {
	t.Helper()
	path := filepath.Join(dir, "ferry.db")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	j.now = func() time.Time { tick = tick.Add(time.Second); return tick } // the same bytes every run
	states := []bgapi.State{bgapi.Queued, bgapi.Running, bgapi.Paused, bgapi.Waiting, bgapi.Done, bgapi.Failed, bgapi.Canceled}
	sessions := []string{"alpha", "beta", "gamma"}
	for i := range n {
		s := sessions[i%len(sessions)]
		tk, _, err := j.Create(&Task{Session: s, Kind: "get",
			Request: json.RawMessage(fmt.Sprintf(`{"url":"http://example.com/file/%d","path":"/data/%s/%06d.bin"}`, i, s, i))})
		if err != nil {
			t.Fatal(err)
		}
		if st := states[i%len(states)]; st != bgapi.Queued {
			if _, _, err := j.Update(tk.ID, setState(st), &Event{Type: string(st)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if last, _ := j.LastSeq("alpha"); last > 0 {
		if err := j.Ack("alpha", min(last, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Ack("alpha", 0); err != nil {
		t.Fatal(err)
	}
	sm := &sample{path: path, tasks: map[string]*Task{}, last: map[string]uint64{}}
	ts, err := j.Tasks("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range ts {
		sm.tasks[tk.ID] = tk
		n, _ := taskNumber(tk.ID)
		sm.top = max(sm.top, n)
	}
	for _, s := range sessions {
		sm.last[s], _ = j.LastSeq(s)
	}
	j.Close()
	if sm.file, err = os.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	sm.findPages()
	return sm
}

// damage writes b as the journal and opens it: it must open whole or be
// refused as damaged, set aside, and then recovered.
type outcome struct {
	opened    bool // the damage went unnoticed (unused bytes, or values still valid)
	changed   bool // ... and what the journal says differs
	report    *Report
	kept, all int // tasks recovered of those the sample had
}

func (sm *sample) damage(t *testing.T, b []byte, what string) outcome {
	t.Helper()
	dir := fastDir(t)
	path := filepath.Join(dir, "ferry.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var out outcome
	out.all = len(sm.tasks)
	j, err := Open(path)
	if err == nil {
		out.opened = true
		out.changed = !sm.same(t, j, what)
		j.Close()
		return out
	}
	var de *DamagedError
	if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) {
		t.Fatalf("%s: Open: %v, want a DamagedError", what, err)
	}
	if de.SetAside == "" {
		t.Fatalf("%s: the damaged journal was not set aside: %v", what, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("%s: a journal is still at %s after it was set aside", what, path)
	}
	// Nothing starts empty over it.
	if _, err := Open(path); !errors.Is(err, ErrDamaged) {
		t.Fatalf("%s: a second Open: %v, want ErrDamaged (awaiting recovery)", what, err)
	}
	r, err := Recover(path)
	if err != nil {
		t.Fatalf("%s: Recover: %v", what, err)
	}
	if r.From != de.SetAside || r.Healthy {
		t.Fatalf("%s: recovered from %q, want %q: %v", what, r.From, de.SetAside, r)
	}
	out.report = r
	j, err = Open(path)
	if err != nil {
		t.Fatalf("%s: Open after Recover: %v\n%v", what, err, r)
	}
	defer j.Close()
	out.kept = sm.checkRecovered(t, j, b, r, what)
	return out
}

// same reports whether j holds what the sample does; every read must
// work.
func (sm *sample) same(t *testing.T, j *Journal, what string) bool {
	t.Helper()
	ts, err := j.Tasks("")
	if err != nil {
		t.Fatalf("%s: opened, then Tasks: %v", what, err)
	}
	same := len(ts) == len(sm.tasks)
	for _, tk := range ts {
		a, _ := json.Marshal(tk)
		b, _ := json.Marshal(sm.tasks[tk.ID])
		same = same && bytes.Equal(a, b)
	}
	readAll(t, j, what+": opened")
	return same
}

// checkRecovered checks the recovered journal j against the sample and
// the damaged bytes b: every task whose record lies intact in b is kept
// as it was, no ID or sequence number is handed out again, and the
// journal works. It returns how many tasks were kept.
func (sm *sample) checkRecovered(t *testing.T, j *Journal, b []byte, r *Report, what string) int {
	t.Helper()
	ts, err := j.Tasks("")
	if err != nil {
		t.Fatalf("%s: recovered, then Tasks: %v", what, err)
	}
	got := map[string]*Task{}
	for _, tk := range ts {
		got[tk.ID] = tk
	}
	kept := 0
	for id, want := range sm.tasks {
		tk := got[id]
		if tk == nil {
			if sm.intact(b, want) {
				t.Errorf("%s: task %s lies intact in the damaged file but was not recovered\n%v", what, id, r)
			}
			continue
		}
		if tk.Error == lostError {
			continue
		}
		kept++
		// A record that was itself damaged may read back otherwise.
		if sm.intact(b, want) && (tk.Session != want.Session || (tk.State != want.State && tk.State != bgapi.Paused)) {
			t.Errorf("%s: task %s recovered as %s/%s, was %s/%s", what, id, tk.Session, tk.State, want.Session, want.State)
		}
	}
	if kept > r.Tasks {
		t.Errorf("%s: %d tasks kept, the report says %d", what, kept, r.Tasks)
	}
	for s, last := range sm.last {
		if evs, err := j.Events(s, 0, 0); err != nil {
			t.Fatalf("%s: recovered, then Events(%s): %v", what, s, err)
		} else if len(evs) > 0 {
			if now, _ := j.LastSeq(s); now < last {
				t.Errorf("%s: session %s: last seq %d, was %d: numbers would be handed out again", what, s, now, last)
			}
		}
	}
	tk, ev, err := j.Create(&Task{Session: "alpha", Kind: "get"})
	if err != nil {
		t.Fatalf("%s: recovered, then Create: %v", what, err)
	}
	if n, _ := taskNumber(tk.ID); n <= sm.top {
		t.Errorf("%s: new task %s: IDs would be handed out again (had up to %d)", what, tk.ID, sm.top)
	}
	if last := sm.last["alpha"]; ev.Seq <= last && len(got) > 0 && sessionKept(got, "alpha") {
		t.Errorf("%s: new event %d of alpha, had up to %d", what, ev.Seq, last)
	}
	return kept
}

func sessionKept(ts map[string]*Task, s string) bool {
	for _, t := range ts {
		if t.Session == s && t.Error != lostError {
			return true
		}
	}
	return false
}

// intact reports whether the sample's record of task t lies in b on a
// page whose bytes are all as written, within the file.
func (sm *sample) intact(b []byte, t *Task) bool {
	pg, ok := sm.pages[t.ID]
	return ok && pg[1] <= len(b) && bytes.Equal(b[pg[0]:pg[1]], sm.file[pg[0]:pg[1]])
}

// findPages notes where each task's record lies: the page holding it,
// with its overflow.
func (sm *sample) findPages() {
	sm.pages = map[string][2]int{}
	ps := int(ne.Uint32(sm.file[pageHeaderSize+8:]))
	for id, t := range sm.tasks {
		rec, _ := json.Marshal(t)
		off := bytes.Index(sm.file, rec)
		if off < 0 {
			continue // stored differently (cannot happen): do not claim it
		}
		start := off / ps * ps
		for start > 0 && ne.Uint64(sm.file[start:]) != uint64(start/ps) {
			start -= ps
		}
		sm.pages[id] = [2]int{start, start + (1+int(ne.Uint32(sm.file[start+12:])))*ps}
	}
}

func TestDamagedEmpty(t *testing.T) {
	sm := writeSample(t, t.TempDir(), 60)
	out := sm.damage(t, nil, "0 bytes")
	if out.report == nil || out.kept != 0 {
		t.Fatalf("a 0-byte journal: %+v", out)
	}
	if !strings.Contains(out.report.Problems[0], "0 bytes") && !strings.Contains(out.report.Problems[0], "too short") {
		t.Errorf("report: %v", out.report)
	}
}

func TestDamagedTruncated(t *testing.T) {
	sm := writeSample(t, t.TempDir(), 400)
	ps := int(ne.Uint32(sm.file[pageHeaderSize+8:]))
	for _, size := range []int{len(sm.file) - 1, len(sm.file) / 2, 5 * ps, 3*ps + 100, 2 * ps, ps, 100} {
		out := sm.damage(t, sm.file[:size], fmt.Sprintf("truncated to %d", size))
		if out.opened && out.changed {
			t.Errorf("a journal truncated to %d of %d bytes opened with other contents", size, len(sm.file))
		}
		if out.opened {
			t.Logf("truncated to %d of %d bytes: only unused pages were cut; it opened whole", size, len(sm.file))
		} else {
			t.Logf("truncated to %d of %d bytes: recovered %d of %d tasks", size, len(sm.file), out.kept, out.all)
		}
	}
}

// Each page zeroed in turn, as a disk that lost a block: the damage is
// found, and every task on another page is kept.
func TestDamagedZeroedPages(t *testing.T) {
	sm := writeSample(t, t.TempDir(), 200)
	ps := int(ne.Uint32(sm.file[pageHeaderSize+8:]))
	// The pages in use, and the next two (beyond, bbolt reads nothing).
	pages := int(ne.Uint64(sm.file[pageHeaderSize+40:])) + 2
	found, kept, all := 0, 0, 0
	for p := range pages {
		b := bytes.Clone(sm.file)
		clear(b[p*ps : (p+1)*ps])
		out := sm.damage(t, b, fmt.Sprintf("page %d zeroed", p))
		if !out.opened {
			found++
			kept += out.kept
			all += out.all
		} else if out.changed {
			t.Errorf("page %d zeroed: opened with other contents", p)
		}
	}
	t.Logf("%d pages zeroed one at a time: %d found damaged (the others unused), %d of %d tasks kept", pages, found, kept, all)
	if found == 0 {
		t.Fatal("no zeroed page was noticed")
	}
}

// Random bytes flipped at seeded positions: nothing panics, the journal
// opens whole or is found damaged and recovered, and every task whose
// page survived is kept.
func TestDamagedFlips(t *testing.T) {
	sm := writeSample(t, t.TempDir(), 200)
	trials := 200
	if raceDetector {
		trials = 50
	}
	var opened, changed, found, kept, all int
	for i := range trials {
		rng := rand.New(rand.NewPCG(uint64(i), 12))
		b := bytes.Clone(sm.file)
		flips := 1 + rng.IntN(8)
		for range flips {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		out := sm.damage(t, b, fmt.Sprintf("seed %d: %d bytes flipped", i, flips))
		switch {
		case out.opened && out.changed:
			changed++
		case out.opened:
			opened++
		default:
			found++
			kept += out.kept
			all += out.all
		}
	}
	t.Logf("%d trials of 1-8 flipped bytes: %d opened unchanged (unused bytes), %d opened with a value changed but valid, "+
		"%d found damaged and recovered (%d of %d tasks kept)", trials, opened, changed, found, kept, all)
}

// The journal is sound: Recover leaves it alone.
func TestRecoverSound(t *testing.T) {
	sm := writeSample(t, t.TempDir(), 10)
	r, err := Recover(sm.path)
	if err != nil || !r.Healthy {
		t.Fatalf("Recover of a sound journal: %v, %v", r, err)
	}
	j := open(t, sm.path)
	if !sm.same(t, j, "sound") {
		t.Fatal("Recover changed a sound journal")
	}
}

// A damaged journal found in use (a page zeroed under a running daemon)
// fails requests with ErrDamaged; it does not crash.
func TestDamagedWhileOpen(t *testing.T) {
	sm := writeSample(t, t.TempDir(), 400)
	j := open(t, sm.path)
	sm.zeroPages(t)
	_, err := j.Tasks("")
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("Tasks over zeroed pages: %v, want ErrDamaged", err)
	}
}

// zeroPages zeroes the sample's pages after its two meta pages, under
// whoever has the journal open.
func (sm *sample) zeroPages(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(sm.path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ps := int(ne.Uint32(sm.file[pageHeaderSize+8:]))
	if _, err := f.WriteAt(make([]byte, len(sm.file)-2*ps), int64(2*ps)); err != nil {
		t.Fatal(err)
	}
}

// A journal found damaged by writers (bbolt panics in the middle of a
// write transaction, holding its writer's lock) fails every writer, those
// waiting their turn too, with ErrDamaged, and every later call; Close
// returns. (The file stays locked while its memory map lives, until the
// process ends; the next process's Open sets it aside.)
func TestDamagedWhileWriting(t *testing.T) {
	sm := writeSample(t, t.TempDir(), 400)
	j, err := Open(sm.path)
	if err != nil {
		t.Fatal(err)
	}
	sm.zeroPages(t)
	const writers = 8
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			var err error
			if i%2 == 0 {
				err = j.Ack("alpha", 11)
			} else {
				_, _, err = j.Update("t000000000001", nil, &Event{Type: "touched"})
			}
			errs <- err
		}()
	}
	deadline := time.After(time.Minute)
	for range writers {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("a write over zeroed pages: %v, want ErrDamaged", err)
			}
		case <-deadline:
			t.Fatal("writers over a damaged journal hang")
		}
	}
	if _, _, err := j.Create(&Task{Session: "alpha", Kind: "get"}); !errors.Is(err, ErrDamaged) {
		t.Errorf("Create after the damage: %v, want ErrDamaged", err)
	}
	if _, err := j.Tasks(""); !errors.Is(err, ErrDamaged) {
		t.Errorf("Tasks after the damage: %v, want ErrDamaged", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- j.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close of a journal found damaged: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close of a journal found damaged hangs")
	}
}

// The damage the attack found, each refused by Open with an error naming
// it rather than opened empty or left to panic later.
func TestOpenRefusesDamage(t *testing.T) {
	sm := writeSample(t, t.TempDir(), 400)
	ps := int(ne.Uint32(sm.file[pageHeaderSize+8:]))
	zeroed := bytes.Clone(sm.file)
	clear(zeroed[2*ps:])
	for what, b := range map[string][]byte{"empty": nil, "truncated": sm.file[:len(sm.file)/2], "zeroed pages": zeroed} {
		path := filepath.Join(t.TempDir(), "ferry.db")
		os.WriteFile(path, b, 0o600)
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s: panic: %v", what, p)
				}
			}()
			j, err := Open(path)
			if err == nil {
				ts, err := j.Tasks("")
				j.Close()
				t.Errorf("%s: opened (%d tasks, %v)", what, len(ts), err)
			}
		}()
	}
}

// Damage the fuzzers found, each once made bbolt panic on a journal Open
// had accepted, or made Recover write a journal Open refused.
func TestDamageFuzzFound(t *testing.T) {
	sm := writeSample(t, t.TempDir(), 12)
	// An inline bucket's page with a nonzero id: bbolt frees that page
	// when the bucket grows.
	// (Each is patched wherever it is: free pages hold older copies.)
	inline := bytes.Clone(sm.file)
	for _, m := range regexp.MustCompile(`(?s)events\x00{8}.{8}`).FindAllIndex(sm.file, -1) { // root 0: inline
		inline[m[1]+7] = 0xff // the inline page's id
	}
	// A format version that is no version: damage, not a later format.
	version := bytes.ReplaceAll(sm.file, []byte("version1"), []byte("version\xce"))
	// A session bucket's name damaged, to an invalid one and to another:
	// the names are the keys of the sessions bucket, each followed by its
	// bucket's 16-byte header.
	invalid, other := bytes.Clone(sm.file), bytes.Clone(sm.file)
	for _, m := range regexp.MustCompile(`(?s)alpha.{16}beta.{16}gamma`).FindAllIndex(sm.file, -1) {
		copy(invalid[m[1]-len("gamma"):], "gam\xffa")
		copy(other[m[0]+len("alpha")+16:], "bexa")
	}
	for what, b := range map[string][]byte{"inline page id": inline, "format version": version, "invalid session name": invalid, "other session name": other} {
		out := sm.damage(t, b, what)
		if out.opened && out.changed {
			t.Errorf("%s: opened with other contents", what)
		}
	}
}
