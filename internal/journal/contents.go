package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// contents is what a walk of a journal file read: its tasks, sessions and
// events as stored, and what could not be read. Open reads strictly (the
// first problem is damage); Recover reads all it can.
type contents struct {
	strict   bool
	problems []string // what could not be read, in the order found
	tooMany  int      // problems beyond maxProblems, not kept

	version  []byte
	buckets  map[string]bool // top-level buckets found
	taskSeq  uint64          // the tasks bucket's sequence
	seqKnown bool
	tasks    map[string]*Task
	active   map[string]bool
	sessions map[string]*sessionContents
	// lost are task IDs an index names whose record could not be read,
	// with their session when known.
	lost map[string]string
	// stale marks unfinished tasks read only from pages that may hold a
	// replaced version of them.
	stale map[string]bool
}

type sessionContents struct {
	eventSeq uint64 // the events bucket's sequence: the last seq handed out
	seqKnown bool
	acked    uint64
	events   map[uint64]Event
	index    map[string]uint64 // task ID -> seq of its latest event
}

// maxProblems bounds what a report lists.
const maxProblems = 50

func newContents(strict bool) *contents {
	return &contents{strict: strict, buckets: map[string]bool{}, tasks: map[string]*Task{}, active: map[string]bool{},
		sessions: map[string]*sessionContents{}, lost: map[string]string{}, stale: map[string]bool{}}
}

func (c *contents) session(s string) *sessionContents {
	sc := c.sessions[s]
	if sc == nil {
		sc = &sessionContents{events: map[uint64]Event{}, index: map[string]uint64{}}
		c.sessions[s] = sc
	}
	return sc
}

func (c *contents) problem(path []string, err error) bool {
	if len(c.problems) < maxProblems {
		where := strings.Join(path, "/")
		if where == "" {
			where = "file"
		}
		c.problems = append(c.problems, where+": "+err.Error())
	} else {
		c.tooMany++
	}
	return !c.strict
}

// err is the first problem, for a strict read.
func (c *contents) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return errors.New(c.problems[0])
}

func (c *contents) bucket(path []string, name []byte, seq uint64) {
	switch {
	case len(path) == 0:
		c.buckets[string(name)] = true
		if string(name) == string(bTasks) {
			c.taskSeq, c.seqKnown = seq, true
		}
	case len(path) == 1 && path[0] == string(bSessions):
		if err := checkSession(string(name)); err != nil {
			c.problem(path, err)
			return
		}
		c.session(string(name))
	case len(path) == 2 && path[0] == string(bSessions) && string(name) == string(bEvents):
		sc := c.session(path[1])
		sc.eventSeq, sc.seqKnown = seq, true
	}
}

func (c *contents) value(path []string, k, v []byte) {
	if len(path) >= 2 && path[0] == string(bSessions) && checkSession(path[1]) != nil {
		// A session bucket whose name is damaged (reported once, by
		// bucket): its events still say whose they are.
		if len(path) == 3 && path[2] == string(bEvents) {
			if e, err := decodeEvent(k, v); err == nil {
				c.session(e.Session).events[e.Seq] = e
			}
		}
		return
	}
	switch {
	case len(path) == 1 && path[0] == string(bMeta):
		if string(k) == string(kVersion) {
			c.version = append([]byte(nil), v...)
		}
	case len(path) == 1 && path[0] == string(bTasks):
		if t, err := decodeStored(k, v); err != nil {
			c.problem(path, err)
			if c.strict || !c.byShape(k, v, false) {
				c.lost[string(k)] = ""
			}
		} else {
			c.addTask(t)
		}
	case len(path) == 1 && path[0] == string(bActive):
		c.active[string(k)] = true
	case len(path) == 2 && path[0] == string(bSessions) && string(k) == string(kAcked):
		if len(v) != 8 {
			c.problem(path, fmt.Errorf("acked: %d bytes", len(v)))
			return
		}
		c.session(path[1]).acked = btou(v)
	case len(path) == 3 && path[0] == string(bSessions) && path[2] == string(bEvents):
		e, err := decodeEvent(k, v)
		if err != nil {
			c.problem(path, err)
			if !c.strict {
				c.byShape(k, v, false) // a page of another bucket, reached through a damaged one
			}
			return
		}
		if e.Session != path[1] {
			// The bucket's name or the record's is damaged; the record
			// is kept where it says it belongs (see attribute).
			c.problem(path, fmt.Errorf("event %d is of session %q", e.Seq, e.Session))
		}
		c.session(e.Session).events[e.Seq] = e
	case len(path) == 3 && path[0] == string(bSessions) && path[2] == string(bTasks):
		if len(v) != 8 {
			c.problem(path, fmt.Errorf("task %s: latest event: %d bytes", k, len(v)))
			return
		}
		c.session(path[1]).index[string(k)] = btou(v)
	}
}

// addTask keeps the latest record of a task found.
func (c *contents) addTask(t *Task) {
	if old := c.tasks[t.ID]; old == nil || t.Updated.After(old.Updated) {
		c.tasks[t.ID] = t
		delete(c.stale, t.ID)
	}
}

// decodeStored decodes a stored task, checking it is one the journal
// could have written under key k.
func decodeStored(k, v []byte) (*Task, error) {
	t, err := decodeTask(k, v)
	switch {
	case err != nil:
		return nil, err
	case t.ID != string(k):
		return nil, fmt.Errorf("task %s: stored under %q", t.ID, k)
	case !t.State.Valid():
		return nil, fmt.Errorf("task %s: unknown state %q", t.ID, t.State)
	}
	if err := checkSession(t.Session); err != nil {
		return nil, fmt.Errorf("task %s: %w", t.ID, err)
	}
	return t, nil
}

// decodeEvent decodes a stored event, checking it is the one keyed k.
func decodeEvent(k, v []byte) (Event, error) {
	var e Event
	if len(k) != 8 {
		return e, fmt.Errorf("event key of %d bytes", len(k))
	}
	if err := json.Unmarshal(v, &e); err != nil {
		return e, fmt.Errorf("event %d: %w", btou(k), err)
	}
	if e.Seq != btou(k) {
		return e, fmt.Errorf("event %d: stored under %d", e.Seq, btou(k))
	}
	if err := checkSession(e.Session); err != nil {
		return e, fmt.Errorf("event %d: %w", e.Seq, err)
	}
	return e, nil
}

// taskNumber is the sequence number in a task ID ("t000000000042": 42).
func taskNumber(id string) (uint64, bool) {
	if len(id) != 13 || id[0] != 't' {
		return 0, false
	}
	n, err := strconv.ParseUint(id[1:], 10, 64)
	return n, err == nil
}

// consistent checks the journal's own rules across buckets: the indexes
// and the tasks agree, and no number handed out is below one in use.
func (c *contents) consistent() error {
	for _, b := range [][]byte{bMeta, bTasks, bActive, bSessions} {
		if !c.buckets[string(b)] {
			return fmt.Errorf("bucket %q is missing", b)
		}
	}
	if c.version == nil {
		return errors.New("no format version")
	}
	for id := range c.active {
		if t := c.tasks[id]; t == nil || t.State.Terminal() {
			return fmt.Errorf("active index: task %s is not an unfinished task", id)
		}
	}
	for id, t := range c.tasks {
		if !t.State.Terminal() && !c.active[id] {
			return fmt.Errorf("task %s is %s but not in the active index", id, t.State)
		}
		if n, ok := taskNumber(id); !ok || n > c.taskSeq {
			return fmt.Errorf("task %s: beyond the last ID handed out (%d)", id, c.taskSeq)
		}
		sc := c.sessions[t.Session]
		if sc == nil {
			return fmt.Errorf("task %s: session %q is missing", id, t.Session)
		}
		if _, ok := sc.index[id]; !ok {
			return fmt.Errorf("task %s: not in the index of session %q", id, t.Session)
		}
	}
	for s, sc := range c.sessions {
		if !sc.seqKnown {
			return fmt.Errorf("session %q has no events bucket", s)
		}
		if sc.acked > sc.eventSeq {
			return fmt.Errorf("session %q: acknowledged %d beyond its last event %d", s, sc.acked, sc.eventSeq)
		}
		for seq := range sc.events {
			if seq > sc.eventSeq || seq <= sc.acked {
				return fmt.Errorf("session %q: event %d outside (%d, %d]", s, seq, sc.acked, sc.eventSeq)
			}
		}
		for id, last := range sc.index {
			if t := c.tasks[id]; t == nil || t.Session != s {
				return fmt.Errorf("session %q: indexed task %s is missing", s, id)
			}
			if last > sc.eventSeq {
				return fmt.Errorf("session %q: task %s's latest event %d was never handed out", s, id, last)
			}
		}
	}
	return nil
}

// readJournal reads a journal file strictly: an error names the first
// thing that makes it damaged.
func readJournal(r io.ReaderAt, size int64) (*contents, error) {
	f, err := openBoltFile(r, size)
	if err != nil {
		return nil, err
	}
	if err := f.truncated(); err != nil {
		return nil, err
	}
	c := newContents(true)
	w := &walker{f: f, v: c, seen: map[uint64]bool{}}
	w.walk()
	if err := c.err(); err != nil {
		return nil, err
	}
	w.checkPages()
	if err := c.err(); err != nil {
		return nil, err
	}
	return c, c.consistent()
}
