package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
	bolt "go.etcd.io/bbolt"
)

// Report says what Recover kept of a damaged journal and what it lost.
type Report struct {
	Journal string // the journal built again
	From    string // the damaged file it was built from, kept where it is
	// Healthy means there was nothing to recover: the journal is sound,
	// or absent with no damaged copy beside it.
	Healthy bool

	Tasks      int // tasks kept
	Unfinished int // of them, not finished: the daemon carries on with them
	Sessions   int
	Events     int // events kept, not yet acknowledged
	// Lost are the tasks known to have existed (an index names them)
	// whose record could not be read. Marked of them, those whose session
	// is known, are recorded as failed with an event, so that whoever
	// waits for them learns it.
	Lost   []string
	Marked int
	// Held are unfinished tasks read only from pages that may be stale
	// (the freelist was unreadable): they are paused rather than run
	// again; resume them if they are still wanted.
	Held []string
	// Problems says what could not be read.
	Problems []string
}

func (r *Report) String() string {
	if r.Healthy {
		return fmt.Sprintf("%s is sound: nothing to recover", r.Journal)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rebuilt %s from %s (kept there): %d tasks (%d unfinished), %d events in %d sessions",
		r.Journal, r.From, r.Tasks, r.Unfinished, r.Events, r.Sessions)
	if len(r.Lost) > 0 {
		fmt.Fprintf(&b, "\nlost %d tasks (%d marked failed in their session): %s", len(r.Lost), r.Marked, strings.Join(r.Lost, " "))
	}
	if len(r.Held) > 0 {
		fmt.Fprintf(&b, "\npaused %d tasks found only in pages that may be stale (resume them if they are wanted): %s",
			len(r.Held), strings.Join(r.Held, " "))
	}
	for _, p := range r.Problems {
		b.WriteString("\nunreadable: " + p)
	}
	return b.String()
}

// lostError is the error of a task whose record a damaged journal lost.
const lostError = "the daemon's journal was damaged and lost this task's record"

// seqGap is added to a sequence that could not be read, so that no
// number handed out before is handed out again.
const seqGap = 1 << 20

// Recover builds the journal at path again from what is readable in the
// damaged copy set aside beside it (the latest one): every task and event
// it can read is kept, indexes are rebuilt, and what is lost is reported.
// A journal found damaged at path is set aside first. A sound journal is
// left alone (Report.Healthy); one in use fails with ErrLocked.
func Recover(path string) (*Report, error) {
	f, err := openLocked(path)
	if err != nil {
		return nil, err
	}
	if f != nil {
		err := checkFile(f)
		var fe *formatError
		switch {
		case errors.As(err, &fe):
			f.Close()
			return nil, fmt.Errorf("journal: %s has %w", path, err)
		case err == nil:
			f.Close()
			return &Report{Journal: path, Healthy: true}, nil
		}
		_, err = setAside(path)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	copies, err := DamagedCopies(path)
	if err != nil {
		return nil, err
	}
	if len(copies) == 0 {
		return &Report{Journal: path, Healthy: true}, nil
	}
	from := copies[len(copies)-1]
	c, err := salvage(from)
	if err != nil {
		return nil, err
	}
	r := &Report{Journal: path, From: from}
	if err := create(path, func(tx *bolt.Tx) error { return c.fill(tx, r) }); err != nil {
		return nil, err
	}
	r.Problems = c.problems
	if c.tooMany > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("... and %d more", c.tooMany))
	}
	return r, nil
}

// salvage reads all it can of the damaged journal file at path.
func salvage(path string) (*contents, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	c := newContents(false)
	err = guard(func() error { c.salvage(f, fi.Size()); return nil })
	if err != nil { // the reader is bounds-checked: this is a bug, reported rather than crashed on
		c.problem(nil, err)
	}
	return c, nil
}

func (c *contents) salvage(r io.ReaderAt, size int64) {
	bf, err := openBoltFile(r, size)
	if err != nil {
		c.problem(nil, err)
		c.scanPages(r, size, uint64(os.Getpagesize()), nil, true)
		return
	}
	if err := bf.truncated(); err != nil {
		c.problem(nil, err)
	}
	w := &walker{f: bf, v: c, seen: map[uint64]bool{}, salvage: true}
	w.walk()
	// Pages neither reached nor free were cut off from the tree by a
	// damaged page above them: what they hold is current. Free pages
	// hold what was replaced; if the freelist is unreadable, they cannot
	// be told apart.
	skip := w.seen
	stale := true
	if bf.meta.freelist != noFreelist {
		if free, own, err := bf.freelist(); err != nil {
			c.problem(nil, err)
		} else {
			stale = false
			skip = maps.Clone(w.seen)
			for _, id := range append(free, own...) {
				skip[id] = true
			}
		}
	}
	c.scanPages(r, size, bf.meta.pageSize, skip, stale)
}

// scanPages reads every leaf page of the file not in skip, keeping the
// tasks and events it recognizes by their shape (their bucket is unknown).
func (c *contents) scanPages(r io.ReaderAt, size int64, pageSize uint64, skip map[uint64]bool, stale bool) {
	f := &boltFile{r: r, size: size, meta: boltMeta{pageSize: pageSize, pgid: uint64(size) / pageSize}}
	for id := uint64(2); id < f.pages(); id++ {
		if skip[id] {
			continue
		}
		p, err := f.page(id)
		if err != nil || pageFlags(p) != leafPage {
			continue
		}
		c.orphanLeaf(p, stale, 0)
	}
}

// orphanLeaf keeps what a leaf page cut off from its bucket holds,
// descending into inline buckets.
func (c *contents) orphanLeaf(p []byte, stale bool, depth int) {
	elems, _ := leafElems(p, true)
	if depth > 8 {
		return
	}
	for _, e := range elems {
		if e.flags&bucketEntry != 0 {
			if len(e.value) > bucketHeader && ne.Uint64(e.value) == 0 {
				c.orphanLeaf(e.value[bucketHeader:], stale, depth+1)
			}
			continue
		}
		c.byShape(e.key, e.value, stale)
	}
}

// byShape keeps a value found where its bucket is not known (or not the
// one it belongs to) if it is a task or an event: their records say
// whose they are. It reports whether it kept it.
func (c *contents) byShape(k, v []byte, stale bool) bool {
	if t, err := decodeStored(k, v); err == nil {
		if old := c.tasks[t.ID]; old == nil || t.Updated.After(old.Updated) {
			c.tasks[t.ID] = t
			c.stale[t.ID] = stale && !t.State.Terminal()
		}
		return true
	}
	if ev, err := decodeEvent(k, v); err == nil {
		sc := c.session(ev.Session)
		if _, ok := sc.events[ev.Seq]; !ok {
			sc.events[ev.Seq] = ev
		}
		return true
	}
	return false
}

// fill writes what was salvaged into the fresh journal tx, and tells r.
func (c *contents) fill(tx *bolt.Tx, r *Report) error {
	now := time.Now().UTC()
	lost := c.lostTasks()
	c.attribute()
	tasks := tx.Bucket(bTasks)
	top := c.taskSeq
	for _, id := range slices.Sorted(maps.Keys(c.tasks)) {
		t := c.tasks[id]
		if c.stale[id] {
			t.State, t.Error = bgapi.Paused, "recovered from a damaged journal: resume it if it is still wanted"
			r.Held = append(r.Held, id)
		}
		if err := putTask(tx, t); err != nil {
			return err
		}
		c.session(t.Session)
		if n, _ := taskNumber(id); n > top {
			top = n
		}
		if !t.State.Terminal() {
			r.Unfinished++
		}
	}
	for id, s := range lost {
		if s != "" {
			c.session(s)
		}
		if n, _ := taskNumber(id); n > top {
			top = n
		}
	}
	if !c.seqKnown {
		top += seqGap
	}
	if err := tasks.SetSequence(top); err != nil {
		return err
	}
	for _, s := range slices.Sorted(maps.Keys(c.sessions)) {
		if checkSession(s) != nil {
			continue
		}
		n, err := c.fillSession(tx, s, lost, now, r)
		if err != nil {
			return err
		}
		r.Events += n
		r.Sessions++
	}
	r.Tasks = len(c.tasks)
	r.Lost = slices.Sorted(maps.Keys(lost))
	return nil
}

// attribute settles a task whose record names a session no other record
// names (no other task, no event): that name was damaged, and the task
// goes to the one session that claims it, by its index or its events. A
// session named by records but not by a bucket keeps them: its bucket's
// name was the one damaged.
func (c *contents) attribute() {
	named := map[string]int{} // session -> records naming it
	claims := map[string]map[string]bool{}
	claim := func(id, s string) {
		if claims[id] == nil {
			claims[id] = map[string]bool{}
		}
		claims[id][s] = true
	}
	for _, t := range c.tasks {
		named[t.Session]++
	}
	for s, sc := range c.sessions {
		for id := range sc.index {
			claim(id, s)
		}
		for _, e := range sc.events {
			named[e.Session]++
			claim(e.Task, s)
		}
	}
	for id, t := range c.tasks {
		if named[t.Session] > 1 || len(claims[id]) != 1 {
			continue
		}
		for s := range claims[id] {
			if checkSession(s) == nil {
				t.Session = s
			}
		}
	}
}

// lostTasks are the tasks an index names whose record was not read, with
// their session when an index says it.
func (c *contents) lostTasks() map[string]string {
	lost := map[string]string{}
	add := func(id, session string) {
		if _, ok := taskNumber(id); ok && c.tasks[id] == nil && (lost[id] == "" || session != "") {
			lost[id] = session
		}
	}
	for id, s := range c.lost {
		add(id, s)
	}
	for id := range c.active {
		add(id, "")
	}
	for s, sc := range c.sessions {
		for id := range sc.index {
			add(id, s)
		}
	}
	return lost
}

// fillSession writes session s: its unacknowledged events, its index of
// tasks, and a failed task and event for each of its lost tasks.
func (c *contents) fillSession(tx *bolt.Tx, s string, lost map[string]string, now time.Time, r *Report) (int, error) {
	sc := c.sessions[s]
	sb, err := tx.Bucket(bSessions).CreateBucket([]byte(s))
	if err != nil {
		return 0, err
	}
	events, err := sb.CreateBucket(bEvents)
	if err != nil {
		return 0, err
	}
	index, err := sb.CreateBucket(bTasks)
	if err != nil {
		return 0, err
	}
	last := max(sc.eventSeq, sc.acked)
	latest := map[string]uint64{}
	n := 0
	for _, seq := range slices.Sorted(maps.Keys(sc.events)) {
		e := sc.events[seq]
		last = max(last, seq)
		latest[e.Task] = seq
		if seq <= sc.acked {
			continue // acknowledged: a stale copy
		}
		b, err := json.Marshal(e)
		if err != nil {
			return 0, err
		}
		if err := appendOnly(events).Put(u64(seq), b); err != nil {
			return 0, err
		}
		n++
	}
	for _, v := range sc.index {
		last = max(last, v)
	}
	if !sc.seqKnown {
		last += seqGap
	}
	if err := events.SetSequence(last); err != nil {
		return 0, err
	}
	if sc.acked > 0 {
		if err := sb.Put(kAcked, u64(sc.acked)); err != nil {
			return 0, err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.tasks)) {
		if c.tasks[id].Session != s {
			continue
		}
		// The seq of its latest event: as read, else as indexed, else
		// the last one (so it is not forgotten before all is acknowledged).
		seq, ok := latest[id]
		if !ok {
			if seq, ok = sc.index[id]; !ok {
				seq = last
			}
		}
		if err := appendOnly(index).Put([]byte(id), u64(seq)); err != nil {
			return 0, err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(lost)) {
		if lost[id] != s {
			continue
		}
		t := &Task{ID: id, Session: s, State: bgapi.Failed, Error: lostError, Created: now, Updated: now}
		if err := putTask(tx, t); err != nil {
			return 0, err
		}
		data, _ := json.Marshal(map[string]string{"error": lostError})
		if _, err := appendEvent(sb, t, Event{Type: string(bgapi.Failed), Data: data}, now); err != nil {
			return 0, err
		}
		r.Marked++
		n++
	}
	return n, nil
}
