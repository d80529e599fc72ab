// Package journal is the background daemon's durable store: its tasks and,
// per session, an append-only event log that a consumer reads with a cursor
// and acknowledges.
//
// Everything lives in one bbolt file and every change is one fsynced
// transaction, so a task's new state and the event announcing it are on disk
// together or not at all, and a daemon killed at any moment restarts from a
// consistent journal.
//
// Layout (bucket → key → value):
//
//	meta      "version"  → format version
//	tasks     task ID    → Task JSON; the bucket's sequence numbers task IDs
//	active    task ID    → empty, for every task not in a terminal state
//	sessions  session    → bucket:
//	            "events" → bucket: 8-byte big-endian seq → Event JSON;
//	                       its sequence is the last seq handed out
//	            "tasks"  → bucket: task ID → 8-byte seq of its latest event
//	            "acked"  → 8-byte seq acknowledged by the consumer
//
// Session buckets are kept even when empty so that sequence numbers are never
// reused.
package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/bgapi"
)

// ErrLocked is returned by Open when another Journal (in this process or
// another) has the file open: two daemons must never share a journal.
var ErrLocked = errors.New("journal: in use by another process")

// ErrNotFound is returned for an unknown task ID.
var ErrNotFound = errors.New("journal: no such task")

// ErrAckBeyond reports an acknowledgement of events not yet written: the
// consumer cannot have seen them.
var ErrAckBeyond = errors.New("journal: ack beyond the last event")

// lockTimeout bounds the wait for the file lock so that a second daemon fails
// fast instead of hanging.
const lockTimeout = 100 * time.Millisecond

// formatVersion is stored in meta; Open refuses a file written in another
// format rather than misreading it.
const formatVersion = "1"

// maxSessionLen bounds session IDs, which become bucket keys and appear in
// API paths.
const maxSessionLen = 128

var (
	bMeta     = []byte("meta")
	bTasks    = []byte("tasks")
	bActive   = []byte("active")
	bSessions = []byte("sessions")
	bEvents   = []byte("events")
	kVersion  = []byte("version")
	kAcked    = []byte("acked")
)

// Task is one transfer the daemon owns. Request and Result are opaque to the
// journal.
type Task struct {
	ID        string          `json:"id"`       // assigned by Create: "t" + a zero-padded decimal sequence, sortable ("t000000000001")
	Session   string          `json:"session"`  // the client session that owns the task and reads its events
	Kind      string          `json:"kind"`     // "get", "put", "hls" (opaque to the journal)
	Request   json.RawMessage `json:"request"`  // opaque to the journal
	Priority  int             `json:"priority"` // higher runs first
	NotBefore time.Time       `json:"not_before,omitzero"`
	State     bgapi.State     `json:"state"`
	NextTry   time.Time       `json:"next_try,omitzero"`
	Tries     int             `json:"tries,omitempty"`
	Created   time.Time       `json:"created"`
	Updated   time.Time       `json:"updated"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     string          `json:"error,omitempty"`
	Failure   json.RawMessage `json:"failure,omitempty"` // the parts of Error (opaque)
	// Moved counts the bytes earlier runs moved over the network, so that
	// the result counts every run (opaque to the journal).
	Moved int64 `json:"moved,omitempty"`
}

// Event is one entry of a session's log.
type Event struct {
	Seq     uint64          `json:"seq"` // per session, from 1, never reused
	Session string          `json:"session"`
	Task    string          `json:"task"`
	Type    string          `json:"type"` // "created", "started", "paused", "resumed", "waiting", "done", "failed", "canceled" (opaque)
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// InvalidSessionError reports a session ID the journal refuses. IDs are
// chosen by users and become bucket keys and URL path segments, so they must
// be non-empty, at most 128 bytes, printable and free of '/'.
type InvalidSessionError struct {
	Session string
	Reason  string
}

func (e *InvalidSessionError) Error() string {
	s := e.Session
	if len(s) > maxSessionLen+16 {
		s = s[:maxSessionLen] + "..."
	}
	return fmt.Sprintf("journal: invalid session %q: %s", s, e.Reason)
}

// CheckSession reports whether s is a usable session ID.
func CheckSession(s string) error { return checkSession(s) }

func checkSession(s string) error {
	reason := ""
	switch {
	case s == "":
		reason = "empty"
	case len(s) > maxSessionLen:
		reason = fmt.Sprintf("longer than %d bytes", maxSessionLen)
	case !utf8.ValidString(s):
		reason = "not valid UTF-8"
	case s == "." || s == "..":
		reason = "a path element of its own" // URL paths would lose it
	default:
		for _, r := range s {
			if r == '/' {
				reason = "contains '/'"
				break
			}
			if !unicode.IsPrint(r) {
				reason = fmt.Sprintf("contains unprintable %U", r)
				break
			}
		}
	}
	if reason != "" {
		return &InvalidSessionError{Session: s, Reason: reason}
	}
	return nil
}

// Journal is an open journal file. Its methods are safe for concurrent use;
// writes take turns on write, not on bbolt's own lock, which a bbolt panic
// in a write transaction can leave held: once the file is found damaged,
// the writers waiting their turn fail instead of waiting forever.
type Journal struct {
	db     *bolt.DB
	file   *os.File      // db's locked file: closed directly if db cannot be
	write  chan struct{} // holds one token per write transaction in progress
	broken chan struct{} // closed once the file is found damaged
	once   sync.Once
	reason string           // what found the damage, set before broken is closed
	now    func() time.Time // nil: time.Now (tests write journals byte for byte alike)
}

func (j *Journal) clock() time.Time {
	if j.now != nil {
		return j.now()
	}
	return time.Now()
}

// Open opens the journal at path, creating an empty one if there is none.
// It fails with ErrLocked if another process holds it (bbolt's flock, with
// a short timeout so a second daemon fails fast).
//
// The file is read through before bbolt opens it: one that is damaged
// (empty, truncated, pages or records that are not what the journal
// wrote) is moved to PATH.damaged-TIME and Open fails with a
// *DamagedError. While a damaged copy lies beside a missing journal, Open
// keeps failing rather than start empty over the tasks it had: Recover
// builds the journal again from what is readable. A failure that says
// nothing of the file (bbolt unable to map it for want of memory, a
// resource limit) is returned as it is, and the file left in place.
func Open(path string) (*Journal, error) {
	for try := 0; try < 3; try++ {
		f, err := openLocked(path)
		if err != nil {
			return nil, err
		}
		if f != nil {
			return openChecked(path, f)
		}
		if err := awaitingRecovery(path); err != nil {
			return nil, err
		}
		if err := create(path, nil); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("journal: %s keeps disappearing", path)
}

// awaitingRecovery refuses to create a journal where a damaged one was set
// aside and not yet recovered.
func awaitingRecovery(path string) error {
	copies, err := DamagedCopies(path)
	if err != nil || len(copies) == 0 {
		return err
	}
	return &DamagedError{Path: path, Reason: fmt.Sprintf(
		"it is missing and the damaged %s awaits recovery (or remove the damaged copies to start with an empty journal)",
		copies[len(copies)-1])}
}

// openChecked checks the locked journal file f and hands it to bbolt. Only
// damage sets the file aside: what the check finds, or bbolt panicking or
// faulting on it. bbolt failing otherwise (a memory map refused for want of
// memory, a resource limit) says nothing of the file: that error is
// returned, and the journal stays where it is.
func openChecked(path string, f *os.File) (*Journal, error) {
	damage := checkFile(f)
	var fe *formatError
	if errors.As(damage, &fe) {
		f.Close()
		return nil, fmt.Errorf("journal: %s has %w", path, damage)
	}
	if damage == nil {
		db, err := openBolt(path, f)
		var pe *panicError
		switch {
		case err == nil:
			return newJournal(db, f), nil
		case !errors.As(err, &pe):
			f.Close() // if bbolt has not
			return nil, fmt.Errorf("journal: open %s: %w", path, err)
		}
		damage = err
	}
	moved, aerr := setAside(path) // still under the lock
	f.Close()
	if aerr != nil {
		return nil, fmt.Errorf("journal: %s is damaged (%v), and setting it aside failed: %w", path, damage, aerr)
	}
	return nil, &DamagedError{Path: path, Reason: damage.Error(), SetAside: moved}
}

// openBolt hands bbolt the locked journal file f; a panic of bbolt's is a
// *panicError.
func openBolt(path string, f *os.File) (*bolt.DB, error) {
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout,
			OpenFile: func(string, int, os.FileMode) (*os.File, error) { return f, nil }})
		return err
	})
	return db, err
}

// create makes a journal at path, with fill's tasks and events (nil: an
// empty one). It is written under another name and linked into place
// whole, so a file at path is never a journal half made; fs.ErrExist if
// one appeared meanwhile.
func create(path string, fill func(*bolt.Tx) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".new-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	tmp.Close()
	defer os.Remove(name)
	db, err := bolt.Open(name, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := initBuckets(tx); err != nil {
			return err
		}
		if fill != nil {
			return fill(tx)
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("journal: create %s: %w", path, err)
	}
	if err := os.Link(name, path); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// initBuckets lays out an empty journal.
func initBuckets(tx *bolt.Tx) error {
	meta, err := tx.CreateBucket(bMeta)
	if err != nil {
		return err
	}
	if err := meta.Put(kVersion, []byte(formatVersion)); err != nil {
		return err
	}
	for _, name := range [][]byte{bTasks, bActive, bSessions} {
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	return nil
}

// newJournal is the journal of db, open on its locked file f.
func newJournal(db *bolt.DB, f *os.File) *Journal {
	return &Journal{db: db, file: f, write: make(chan struct{}, 1), broken: make(chan struct{})}
}

// view and update run a transaction; a panic or fault reading the file
// (damaged since it was opened) is a *DamagedError, not a crash, and so is
// every transaction after one.
func (j *Journal) view(fn func(*bolt.Tx) error) error {
	if err := j.foundDamaged(); err != nil {
		return err
	}
	return j.damaged(guard(func() error { return j.db.View(fn) }))
}

func (j *Journal) update(fn func(*bolt.Tx) error) error {
	select {
	case j.write <- struct{}{}:
	case <-j.broken:
		return j.foundDamaged()
	}
	if err := j.foundDamaged(); err != nil {
		<-j.write
		return err
	}
	err := j.damaged(guard(func() error { return j.db.Update(fn) }))
	if !errors.Is(err, ErrDamaged) {
		<-j.write
	} // else bbolt may still hold its lock: the turn is never given back
	return err
}

// damaged marks the journal broken if err is a panic caught in bbolt.
func (j *Journal) damaged(err error) error {
	var pe *panicError
	if errors.As(err, &pe) {
		j.once.Do(func() { j.reason = pe.Error(); close(j.broken) })
		return j.foundDamaged()
	}
	return err
}

// foundDamaged is the *DamagedError of a journal found damaged, or nil.
func (j *Journal) foundDamaged() error {
	select {
	case <-j.broken:
		return &DamagedError{Path: j.db.Path(), Reason: j.reason}
	default:
		return nil
	}
}

// Damaged is closed once an operation found the file damaged (after it
// was opened sound): nothing more can be trusted to it.
func (j *Journal) Damaged() <-chan struct{} { return j.broken }

// Close releases the file and its lock, waiting for transactions in
// progress. A journal found damaged may have a transaction that never
// ends, in bbolt's hands: its file is closed directly and its memory map
// is left to the process, which keeps the file locked until it exits.
func (j *Journal) Close() error {
	if j.foundDamaged() != nil {
		return j.file.Close()
	}
	return j.db.Close()
}

// Create stores a new task (State bgapi.Queued unless set) and appends its
// "created" event, in one transaction.
func (j *Journal) Create(t *Task) (*Task, Event, error) {
	ts, evs, err := j.CreateMany([]*Task{t})
	if err != nil {
		return nil, Event{}, err
	}
	return ts[0], evs[0], nil
}

// CreateMany is Create for several tasks in one transaction (one fsync): all
// are stored or none.
func (j *Journal) CreateMany(ts []*Task) ([]*Task, []Event, error) {
	out := make([]*Task, len(ts))
	for i, t := range ts {
		if err := checkSession(t.Session); err != nil {
			return nil, nil, err
		}
		c := *t
		c.Request = bytes.Clone(t.Request)
		c.Result = bytes.Clone(t.Result)
		if c.State == "" {
			c.State = bgapi.Queued
		}
		if !c.State.Valid() {
			return nil, nil, fmt.Errorf("journal: unknown task state %q", c.State)
		}
		out[i] = &c
	}
	evs := make([]Event, len(ts))
	err := j.update(func(tx *bolt.Tx) error {
		now := j.clock().UTC()
		tasks := tx.Bucket(bTasks)
		for i, t := range out {
			n, err := tasks.NextSequence()
			if err != nil {
				return err
			}
			t.ID = fmt.Sprintf("t%012d", n)
			t.Created, t.Updated = now, now
			if err := putTask(tx, t); err != nil {
				return err
			}
			sb, err := tx.Bucket(bSessions).CreateBucketIfNotExists([]byte(t.Session))
			if err != nil {
				return err
			}
			if evs[i], err = appendEvent(sb, t, Event{Type: "created"}, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, evs, nil
}

// Update applies f to the stored task and, when ev is not nil, appends *ev
// (Seq, Session, Task filled in; Time too when zero) to the task's session
// log, in one transaction, so a state change and its event are never seen
// apart. f returning an error (or panicking) aborts with nothing changed; the
// error is returned as is. f may not change ID, Session or Created; a nil f
// only appends the event (and bumps Updated). f runs inside the write
// transaction, which blocks every other writer: it must be quick and must not
// call the Journal. Returns the updated task and the appended event (zero if
// none).
func (j *Journal) Update(id string, f func(*Task) error, ev *Event) (*Task, Event, error) {
	if ev != nil && ev.Type == "" {
		return nil, Event{}, errors.New("journal: event without a type")
	}
	var (
		out    *Task
		oe     Event
		fPanic any // f's own panic, passed on once the transaction is undone
	)
	err := j.update(func(tx *bolt.Tx) error {
		t, err := getTask(tx, id)
		if err != nil {
			return err
		}
		before := *t
		if f != nil {
			if err := callCaught(f, t, &fPanic); err != nil {
				return err
			}
		}
		if t.ID != before.ID || t.Session != before.Session || !t.Created.Equal(before.Created) {
			return errors.New("journal: Update may not change a task's ID, Session or Created")
		}
		if !t.State.Valid() {
			return fmt.Errorf("journal: unknown task state %q", t.State)
		}
		now := j.clock().UTC()
		t.Updated = now
		if err := putTask(tx, t); err != nil {
			return err
		}
		if ev != nil {
			sb := tx.Bucket(bSessions).Bucket([]byte(t.Session))
			if sb == nil {
				return fmt.Errorf("journal: task %s: session %q missing", id, t.Session)
			}
			if oe, err = appendEvent(sb, t, *ev, now); err != nil {
				return err
			}
		}
		out = t
		return nil
	})
	if fPanic != nil {
		panic(fPanic)
	}
	if err != nil {
		return nil, Event{}, err
	}
	return out, oe, nil
}

// callCaught calls f, keeping a panic of its in *p.
func callCaught(f func(*Task) error, t *Task, p *any) (err error) {
	defer func() {
		if v := recover(); v != nil {
			*p, err = v, errors.New("f panicked")
		}
	}()
	return f(t)
}

// Task returns the task with the given ID, or ErrNotFound.
func (j *Journal) Task(id string) (*Task, error) {
	var t *Task
	err := j.view(func(tx *bolt.Tx) error {
		var err error
		t, err = getTask(tx, id)
		return err
	})
	return t, err
}

// Tasks returns the tasks of session ("" = all) in ID order.
func (j *Journal) Tasks(session string) ([]*Task, error) {
	if session != "" {
		if err := checkSession(session); err != nil {
			return nil, err
		}
	}
	var out []*Task
	err := j.view(func(tx *bolt.Tx) error {
		tasks := tx.Bucket(bTasks)
		if session == "" {
			return tasks.ForEach(func(k, v []byte) error {
				t, err := decodeTask(k, v)
				out = append(out, t)
				return err
			})
		}
		sb := tx.Bucket(bSessions).Bucket([]byte(session))
		if sb == nil {
			return nil
		}
		var err error
		out, err = tasksByIndex(tasks, sb.Bucket(bTasks))
		return err
	})
	return out, err
}

// Unfinished returns every task not in a terminal state, in ID order: what a
// restarted daemon resumes. It reads only those tasks (via the active index),
// however many finished ones the journal holds.
func (j *Journal) Unfinished() ([]*Task, error) {
	var out []*Task
	err := j.view(func(tx *bolt.Tx) error {
		var err error
		out, err = tasksByIndex(tx.Bucket(bTasks), tx.Bucket(bActive))
		return err
	})
	return out, err
}

// Events returns up to limit events of session with Seq > after, in order
// (limit <= 0: all of them). Acknowledged events are gone, so the first one
// returned may be later than after+1; Acked says where the log starts.
func (j *Journal) Events(session string, after uint64, limit int) ([]Event, error) {
	if err := checkSession(session); err != nil {
		return nil, err
	}
	var out []Event
	err := j.view(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bSessions).Bucket([]byte(session))
		if sb == nil {
			return nil
		}
		c := sb.Bucket(bEvents).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("journal: session %q event %d: %w", session, btou(k), err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// LastSeq is the session's newest event sequence number (0 if none).
func (j *Journal) LastSeq(session string) (uint64, error) {
	last, _, err := j.counters(session)
	return last, err
}

// Acked returns the sequence number the session's consumer acknowledged last
// (0 if none).
func (j *Journal) Acked(session string) (uint64, error) {
	_, acked, err := j.counters(session)
	return acked, err
}

func (j *Journal) counters(session string) (last, acked uint64, err error) {
	if err := checkSession(session); err != nil {
		return 0, 0, err
	}
	err = j.view(func(tx *bolt.Tx) error {
		if sb := tx.Bucket(bSessions).Bucket([]byte(session)); sb != nil {
			last, acked = sb.Bucket(bEvents).Sequence(), btou(sb.Get(kAcked))
		}
		return nil
	})
	return last, acked, err
}

// Ack records that the session's consumer has every event up to seq: they
// are deleted. Acking beyond LastSeq is an error (the consumer cannot have
// seen those); acking below the current ack is a no-op, so a consumer may
// repeat an ack after a reconnect.
func (j *Journal) Ack(session string, seq uint64) error {
	if err := checkSession(session); err != nil {
		return err
	}
	return j.update(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bSessions).Bucket([]byte(session))
		var last, acked uint64
		if sb != nil {
			last, acked = sb.Bucket(bEvents).Sequence(), btou(sb.Get(kAcked))
		}
		if seq > last {
			return fmt.Errorf("%w: ack %d of session %q, last event %d", ErrAckBeyond, seq, session, last)
		}
		if seq <= acked {
			return nil
		}
		events := sb.Bucket(bEvents)
		for s := acked + 1; s <= seq; s++ {
			if err := events.Delete(u64(s)); err != nil {
				return err
			}
		}
		return sb.Put(kAcked, u64(seq))
	})
}

// Sessions lists, in order, the sessions that have tasks or unacknowledged
// events.
func (j *Journal) Sessions() ([]string, error) {
	var out []string
	err := j.view(func(tx *bolt.Tx) error {
		ss := tx.Bucket(bSessions)
		return ss.ForEachBucket(func(name []byte) error {
			sb := ss.Bucket(name)
			hasTasks, _ := sb.Bucket(bTasks).Cursor().First()
			if hasTasks != nil || sb.Bucket(bEvents).Sequence() > btou(sb.Get(kAcked)) {
				out = append(out, string(name))
			}
			return nil
		})
	})
	return out, err
}

// Forget deletes the terminal tasks of session whose final event was
// acknowledged, so the consumer has learnt their outcome (housekeeping).
// It returns how many were deleted.
func (j *Journal) Forget(session string) (int, error) {
	return j.ForgetBefore(session, time.Time{})
}

// ForgetBefore is Forget limited to tasks last updated before cutoff (zero:
// any time).
func (j *Journal) ForgetBefore(session string, cutoff time.Time) (int, error) {
	if err := checkSession(session); err != nil {
		return 0, err
	}
	n := 0
	err := j.update(func(tx *bolt.Tx) error {
		n = 0
		sb := tx.Bucket(bSessions).Bucket([]byte(session))
		if sb == nil {
			return nil
		}
		acked := btou(sb.Get(kAcked))
		index, tasks := sb.Bucket(bTasks), tx.Bucket(bTasks)
		var gone [][]byte
		err := index.ForEach(func(id, last []byte) error {
			if btou(last) > acked {
				return nil
			}
			t, err := decodeTask(id, tasks.Get(id))
			if err != nil {
				return err
			}
			if t.State.Terminal() && (cutoff.IsZero() || t.Updated.Before(cutoff)) {
				gone = append(gone, bytes.Clone(id))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range gone {
			if err := tasks.Delete(id); err != nil {
				return err
			}
			if err := index.Delete(id); err != nil {
				return err
			}
		}
		n = len(gone)
		return nil
	})
	return n, err
}

// putTask stores t and keeps the active index in step with its state.
func putTask(tx *bolt.Tx, t *Task) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("journal: encode task %s: %w", t.ID, err)
	}
	id := []byte(t.ID)
	if err := appendOnly(tx.Bucket(bTasks)).Put(id, b); err != nil {
		return err
	}
	if t.State.Terminal() {
		return tx.Bucket(bActive).Delete(id)
	}
	return appendOnly(tx.Bucket(bActive)).Put(id, nil)
}

func getTask(tx *bolt.Tx, id string) (*Task, error) {
	v := tx.Bucket(bTasks).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return decodeTask([]byte(id), v)
}

func decodeTask(id, v []byte) (*Task, error) {
	if v == nil {
		return nil, fmt.Errorf("journal: task %s indexed but missing", id)
	}
	t := new(Task)
	if err := json.Unmarshal(v, t); err != nil {
		return nil, fmt.Errorf("journal: task %s: %w", id, err)
	}
	if string(t.Request) == "null" {
		t.Request = nil // stored as null when absent; hand back what was given
	}
	return t, nil
}

// tasksByIndex returns the tasks whose IDs are the keys of index, in order.
func tasksByIndex(tasks, index *bolt.Bucket) ([]*Task, error) {
	var out []*Task
	err := index.ForEach(func(id, _ []byte) error {
		t, err := decodeTask(id, tasks.Get(id))
		out = append(out, t)
		return err
	})
	return out, err
}

// appendEvent adds e, for task t, to session bucket sb under the next
// sequence number, and records it as t's latest event.
func appendEvent(sb *bolt.Bucket, t *Task, e Event, now time.Time) (Event, error) {
	events, err := sb.CreateBucketIfNotExists(bEvents)
	if err != nil {
		return Event{}, err
	}
	index, err := sb.CreateBucketIfNotExists(bTasks)
	if err != nil {
		return Event{}, err
	}
	if e.Seq, err = events.NextSequence(); err != nil {
		return Event{}, err
	}
	e.Session, e.Task = t.Session, t.ID
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Data = bytes.Clone(e.Data)
	b, err := json.Marshal(e)
	if err != nil {
		return Event{}, fmt.Errorf("journal: encode event: %w", err)
	}
	if err := appendOnly(events).Put(u64(e.Seq), b); err != nil {
		return Event{}, err
	}
	return e, appendOnly(index).Put([]byte(t.ID), u64(e.Seq))
}

// appendOnly tells bbolt that b's keys arrive in increasing order (task IDs
// and sequence numbers), so full pages can be left nearly full on a split
// instead of half empty: the journal gets about 40% smaller.
func appendOnly(b *bolt.Bucket) *bolt.Bucket {
	b.FillPercent = 0.9
	return b
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func btou(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
