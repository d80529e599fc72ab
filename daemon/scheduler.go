package daemon

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/internal/journal"
	"github.com/ferryhq/ferry/internal/retry"
)

// run is a task the daemon has taken from the queue. It is in d.running
// from before the journal says the task runs until after its end is
// recorded (or the recording given up), so a pause or cancel always finds
// it and waits for what was recorded; it counts as running only until its
// transfer returns.
type run struct {
	task *ferry.Task // the engine's task; nil until it is started
	ctx  context.Context
	stop context.CancelFunc
	// intent is why the transfer is being stopped: "pause", "cancel", or
	// "shutdown" (the task continues on the next start).
	intent string
	// ended is set once the transfer has returned, before its end is
	// recorded: whoever learns of the end from the journal finds the
	// transfer no longer running.
	ended bool
	// recorded is closed once the transfer's end is in the journal.
	recorded chan struct{}
	// refused is closed once the journal has refused to record the end
	// (a full disk), refusal set before to why.
	refused chan struct{}
	refusal error
}

// queue orders runnable tasks: higher priority first, then older first;
// tasks held back (NotBefore, NextTry) wait in a heap by time.
type queue struct {
	ready readyHeap
	later laterHeap
	// members holds each queued task's latest entry; older entries of the
	// same task left in the heaps are skipped (lazy deletion).
	members map[string]uint64
	gen     uint64
}

type qitem struct {
	id   string
	prio int
	at   time.Time
	gen  uint64
}

type readyHeap []qitem

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio > h[j].prio
	}
	return h[i].id < h[j].id
}
func (h readyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)   { *h = append(*h, x.(qitem)) }
func (h *readyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type laterHeap []qitem

func (h laterHeap) Len() int           { return len(h) }
func (h laterHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h laterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *laterHeap) Push(x any)        { *h = append(*h, x.(qitem)) }
func (h *laterHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// enqueue makes t runnable (at its NotBefore or NextTry, if later).
// Called with d.mu held.
func (d *daemon) enqueue(t *journal.Task) {
	at := t.NotBefore
	if t.State == bgapi.Waiting {
		at = t.NextTry
	}
	d.q.gen++
	d.q.members[t.ID] = d.q.gen
	it := qitem{id: t.ID, prio: t.Priority, at: at, gen: d.q.gen}
	if at.After(time.Now()) {
		heap.Push(&d.q.later, it)
	} else {
		heap.Push(&d.q.ready, it)
	}
}

func (d *daemon) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// schedule starts runnable tasks while there is room, until ctx ends.
func (d *daemon) schedule(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := d.startRunnable(ctx)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		case <-timer.C:
		}
	}
}

// startRunnable starts tasks in queue order while fewer than MaxTasks run;
// it returns when the next held-back task becomes runnable (zero: none).
func (d *daemon) startRunnable(ctx context.Context) time.Time {
	for {
		d.mu.Lock()
		now := time.Now()
		for d.q.later.Len() > 0 && !d.q.later[0].at.After(now) {
			heap.Push(&d.q.ready, heap.Pop(&d.q.later))
		}
		var next time.Time
		if d.q.later.Len() > 0 {
			next = d.q.later[0].at
		}
		if d.stopping || len(d.running) >= d.cfg.MaxTasks || d.q.ready.Len() == 0 {
			d.mu.Unlock()
			return next
		}
		it := heap.Pop(&d.q.ready).(qitem)
		var r *run
		if d.q.members[it.id] == it.gen {
			delete(d.q.members, it.id)
			// Out of the queue and into the running set at once: the
			// task is always in one of them.
			r = d.newRun(ctx, it.id)
		}
		d.mu.Unlock()
		if r != nil {
			d.start(it.id, r)
		}
	}
}

// newRun registers a run for the task. Its transfer outlives ctx (the
// scheduler's): only stop ends it. Called with d.mu held.
func (d *daemon) newRun(ctx context.Context, id string) *run {
	tctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &run{ctx: tctx, stop: stop, recorded: make(chan struct{}), refused: make(chan struct{})}
	d.running[id] = r
	return r
}

// forgetRun ends a run once what became of its task is in the journal.
func (d *daemon) forgetRun(id string, r *run) {
	r.stop()
	d.mu.Lock()
	if d.running[id] == r {
		delete(d.running, id)
	}
	d.mu.Unlock()
	close(r.recorded)
	d.wake()
}

// transferring counts the runs whose transfer has not returned. Called
// with d.mu held.
func (d *daemon) transferring() int {
	n := 0
	for _, r := range d.running {
		if !r.ended {
			n++
		}
	}
	return n
}

var errNotRunnable = errors.New("not runnable")

// start marks the task running (with its "started" event) and hands it to
// the engine.
func (d *daemon) start(id string, r *run) {
	t, ev, err := d.j.Update(id, func(t *journal.Task) error {
		if t.State != bgapi.Queued && t.State != bgapi.Waiting {
			return errNotRunnable
		}
		t.State, t.Tries, t.NextTry = bgapi.Running, t.Tries+1, time.Time{}
		return nil
	}, &journal.Event{Type: bgapi.EventStarted})
	if err != nil {
		if !errors.Is(err, errNotRunnable) {
			d.log.Error("starting a task; trying again later", "task", id, "err", err, "in", d.cfg.RetryWait)
			d.enqueueLater(id)
		}
		d.forgetRun(id, r)
		return
	}
	d.notify(ev.Session)
	ft, err := d.newTransfer(r.ctx, t)
	d.mu.Lock()
	r.task = ft
	intent := r.intent
	d.mu.Unlock()
	if err != nil {
		d.finish(t, nil, fmt.Errorf("invalid request: %w", err), intent, 0)
		d.forgetRun(id, r)
		return
	}
	if intent == "cancel" {
		ft.Cancel() // asked for while it started: its partial files go too
	}
	d.log.Info("task started", "task", id, "session", t.Session, "kind", t.Kind, "try", t.Tries)
	d.runs.Go(func() {
		res, err := ft.Wait(context.Background())
		d.s.Forget(ft) // the journal has it from here
		d.mu.Lock()
		r.ended = true // no longer running, before the journal says so
		intent := r.intent
		d.mu.Unlock()
		d.finish(t, res, err, intent, ft.BytesMoved())
		if d.cfg.recorded != nil {
			d.cfg.recorded(id)
		}
		d.forgetRun(id, r)
	})
}

// enqueueLater queues a task again after RetryWait: the journal could not
// record its start (a full disk), and it must not be left behind.
func (d *daemon) enqueueLater(id string) {
	t, err := d.j.Task(id)
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.q.gen++
	d.q.members[id] = d.q.gen
	heap.Push(&d.q.later, qitem{id: id, prio: t.Priority, at: time.Now().Add(d.cfg.RetryWait), gen: d.q.gen})
}

// newTransfer starts the engine for t.
func (d *daemon) newTransfer(ctx context.Context, t *journal.Task) (*ferry.Task, error) {
	return d.s.StartStored(ctx, stored(t))
}

// stored is t as the library runs it. Downloads and uploads keep their
// state until the journal has their result (see finish): a daemon killed
// in between finds them complete instead of transferring them again.
func stored(t *journal.Task) ferry.StoredTask { return ferry.StoredTask{Kind: t.Kind, Spec: t.Request} }

// finish records how a transfer ended, with its event, in one step; moved
// is what the run moved over the network.
func (d *daemon) finish(t *journal.Task, res *ferry.Result, err error, intent string, moved int64) {
	if intent == "shutdown" && err != nil {
		// Still "running" in the journal: it continues on the next start,
		// and its result counts this run too. Not worth a wait for room on
		// a full disk: only the count is lost.
		d.j.Update(t.ID, func(jt *journal.Task) error { jt.Moved += moved; return nil }, nil)
		return
	}
	var state bgapi.State
	var data eventData
	wait := time.Duration(0)
	switch {
	case err == nil:
		state = bgapi.Done
		data.Result = result(t, res)
	case intent == "pause":
		state = bgapi.Paused
	case intent == "cancel":
		state = bgapi.Canceled
	case retry.Unreachable(err):
		// The host could not be reached at all: wait for connectivity
		// instead of failing.
		state = bgapi.Waiting
		data.Error, data.Failure = err.Error(), failure(err)
		wait = min(d.cfg.RetryWait<<min(t.Tries-1, 10), time.Hour) // a shift of 10 passes the hour
	default:
		state = bgapi.Failed
		data.Error, data.Failure = err.Error(), failure(err)
	}
	var payload json.RawMessage
	if data.Result != nil || data.Error != "" {
		payload, _ = json.Marshal(data)
	}
	evType := map[bgapi.State]string{bgapi.Done: bgapi.EventDone, bgapi.Paused: bgapi.EventPaused,
		bgapi.Canceled: bgapi.EventCanceled, bgapi.Waiting: bgapi.EventWaiting, bgapi.Failed: bgapi.EventFailed}[state]
	nt, ev, uerr := d.record(t.ID, func(jt *journal.Task) error {
		if jt.State.Terminal() {
			return errNotRunnable // cancelled meanwhile: nothing more to say
		}
		jt.State = state
		jt.Moved += moved
		if state == bgapi.Waiting {
			jt.NextTry = time.Now().Add(wait)
		}
		if data.Result != nil {
			jt.Result, _ = json.Marshal(data.Result)
		}
		jt.Error = data.Error
		jt.Failure = nil
		if data.Failure != nil {
			jt.Failure, _ = json.Marshal(data.Failure)
		}
		return nil
	}, &journal.Event{Type: evType, Data: payload})
	if errors.Is(uerr, errNotRunnable) {
		return
	}
	if uerr != nil {
		d.log.Error("recording a task's end", "task", t.ID, "err", uerr)
		return
	}
	d.log.Info("task "+string(state), "task", t.ID, "session", t.Session, "err", data.Error)
	if state == bgapi.Done {
		d.forgetState(t) // recorded: the engine's own record can go
	}
	if state == bgapi.Waiting {
		d.mu.Lock()
		d.enqueue(nt)
		d.mu.Unlock()
	}
	d.notify(ev.Session)
}

// record writes a transfer's end, trying again (RetryWait, doubling to a
// minute) while the journal cannot take it (a full disk): the end is never
// dropped while the daemon runs, and a pause or cancel waiting for it is
// told so after a short wait (awaitRecorded). A daemon stopping meanwhile
// leaves the task running in the journal: the next start runs it again,
// from its engine's own state.
func (d *daemon) record(id string, f func(*journal.Task) error, ev *journal.Event) (*journal.Task, journal.Event, error) {
	for wait := d.cfg.RetryWait; ; wait = min(2*wait, time.Minute) {
		t, e, err := d.j.Update(id, f, ev)
		if err == nil || errors.Is(err, errNotRunnable) || errors.Is(err, journal.ErrNotFound) || errors.Is(err, journal.ErrDamaged) {
			return t, e, err
		}
		d.log.Warn("recording a task's end failed; trying again", "task", id, "err", err, "in", wait)
		d.refuse(id, err)
		select {
		case <-d.quit:
			return nil, journal.Event{}, err
		case <-time.After(wait):
		}
	}
}

// refuse notes that the journal refused to record the end of task id's
// run: those waiting for it are told so (see awaitRecorded).
func (d *daemon) refuse(id string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.running[id]; r != nil && r.refusal == nil {
		r.refusal = err
		close(r.refused)
	}
}

// awaitRecorded waits until the end of task id's run r is in the journal.
// Once the journal has refused it (a full disk), it waits at most RetryWait
// more, then fails with errUnwritable: the caller learns that the journal
// cannot be written rather than wait for room; the end is recorded once
// there is.
func (d *daemon) awaitRecorded(id string, r *run) error {
	select {
	case <-r.recorded:
		return nil
	case <-r.refused:
	}
	timer := time.NewTimer(d.cfg.RetryWait)
	defer timer.Stop()
	select {
	case <-r.recorded:
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: task %s's end waits to be recorded (%w); it is recorded once the journal can be written",
			errUnwritable, id, r.refusal)
	}
}

// eventData is what a journal event of a task's end holds.
type eventData struct {
	Result  *bgapi.Result  `json:"result,omitempty"`
	Error   string         `json:"error,omitempty"`
	Failure *bgapi.Failure `json:"failure,omitempty"`
}

// failure is the parts of err when it is the library's *ferry.Error, so
// that a program learns the step, the URL and a response's status, not
// only a message.
func failure(err error) *bgapi.Failure {
	fe, ok := errors.AsType[*ferry.Error](err)
	if !ok {
		return nil
	}
	f := &bgapi.Failure{Op: fe.Op, URL: fe.URL, Cause: fe.Err.Error()}
	if se, ok := errors.AsType[*ferry.StatusError](err); ok {
		f.Status, f.StatusLine = se.StatusCode, se.Status
	}
	return f
}

// result is res as the daemon reports it: with the bytes t's earlier runs
// moved counted in.
func result(t *journal.Task, res *ferry.Result) *bgapi.Result {
	if res == nil {
		return nil
	}
	r := &bgapi.Result{URL: res.URL, Path: res.Path, Location: res.Location, Size: res.Size,
		ResumedFrom: res.ResumedFrom, Downloaded: res.Downloaded, Uploaded: res.Uploaded, SHA256: res.SHA256,
		Proto: res.Proto, Protocol: string(res.Protocol), Response: res.Response, Verified: res.Verified}
	if t.Kind == bgapi.KindPut {
		r.Uploaded += t.Moved
	} else {
		r.Downloaded += t.Moved
	}
	r.Metrics, _ = json.Marshal(res.Metrics)
	if res.HLS != nil {
		r.Segments = res.HLS.Segments
	}
	return r
}

// stopRunning stops every transfer for the shutdown: their state stays
// "running", so the next start continues them.
func (d *daemon) stopRunning() {
	d.mu.Lock()
	runs := make([]*run, 0, len(d.running))
	for _, r := range d.running {
		r.intent = "shutdown"
		runs = append(runs, r)
	}
	d.mu.Unlock()
	for _, r := range runs {
		r.stop()
	}
	d.runs.Wait() // every end is recorded before the journal closes
}

// control pauses, resumes or cancels a task.
func (d *daemon) control(id, what string) (*journal.Task, error) {
	var t *journal.Task
	var ev journal.Event
	for try := 0; t == nil; try++ {
		if try == 50 {
			return nil, fmt.Errorf("%w: task %s keeps changing state", errConflict, id)
		}
		if r := d.transfer(id); r != nil {
			if what != "resume" {
				st, err := d.stopTransfer(id, r, what)
				if err != nil || st.State.Terminal() || st.State == stateFor[what] {
					return st, err
				}
				continue // it ended otherwise (e.g. waiting): apply to that
			}
			d.mu.Lock()
			stopping := r.intent != ""
			d.mu.Unlock()
			if !stopping {
				t, err := d.j.Task(id)
				return t, err // running already
			}
			// A pause in flight: resume what it recorded.
			if err := d.awaitRecorded(id, r); err != nil {
				return nil, err
			}
			continue
		}
		cur, err := d.j.Task(id)
		if err != nil {
			return nil, err
		}
		// A run is registered before the journal says its task runs, and
		// forgotten after its end is recorded: a task running in the
		// journal with no run registered now is stale, its run gone
		// without recording its end (the daemon stopping, or the journal
		// refusing the record). Nothing transfers it: the action applies
		// to its record. Should its run have recorded its end meanwhile,
		// the update below finds the state changed and looks again.
		stale := cur.State == bgapi.Running && d.transfer(id) == nil
		if cur.State == bgapi.Running && !stale && what != "resume" {
			continue // started since we looked: stop its run
		}
		state, evType := cur.State, ""
		switch {
		case cur.State.Terminal():
			return nil, fmt.Errorf("%w: task %s is %s", errConflict, id, cur.State)
		case what == "pause" && (cur.State == bgapi.Queued || cur.State == bgapi.Waiting || stale):
			state, evType = bgapi.Paused, bgapi.EventPaused
		case what == "resume" && cur.State == bgapi.Paused:
			state, evType = bgapi.Queued, bgapi.EventResumed
		case what == "cancel":
			state, evType = bgapi.Canceled, bgapi.EventCanceled
		default:
			return cur, nil // already so
		}
		t, ev, err = d.j.Update(id, func(t *journal.Task) error {
			if t.State != cur.State {
				return errUnchanged // the scheduler got there first: look again
			}
			t.State = state
			return nil
		}, &journal.Event{Type: evType})
		if err != nil && !errors.Is(err, errUnchanged) {
			return nil, err
		}
	}
	d.mu.Lock()
	if t.State == bgapi.Queued {
		d.enqueue(t)
	} else {
		delete(d.q.members, id)
	}
	d.mu.Unlock()
	if t.State == bgapi.Canceled {
		d.removePartial(t)
	}
	d.notify(ev.Session)
	d.wake()
	return t, nil
}

func (d *daemon) transfer(id string) *run {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running[id]
}

// liveTask is the engine's task of a transfer running now, or nil.
func (d *daemon) liveTask(id string) *ferry.Task {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.running[id]; r != nil && !r.ended {
		return r.task
	}
	return nil
}

// stopTransfer pauses or cancels a running task and returns it once its
// new state is recorded (errUnwritable while the journal refuses it).
func (d *daemon) stopTransfer(id string, r *run, what string) (*journal.Task, error) {
	d.mu.Lock()
	if r.intent == "" || what == "cancel" {
		r.intent = what
	}
	ft := r.task
	d.mu.Unlock()
	switch {
	case what == "cancel" && ft != nil:
		ft.Cancel() // and its partial files go
	case what == "cancel":
		// Still starting: start sees the intent once the engine has
		// the task, and cancels it there.
	default:
		r.stop() // its partial files stay for the resume
	}
	if err := d.awaitRecorded(id, r); err != nil {
		return nil, err
	}
	return d.j.Task(id)
}

// stateFor is the state each action leads to.
var stateFor = map[string]bgapi.State{"pause": bgapi.Paused, "resume": bgapi.Queued, "cancel": bgapi.Canceled}

// forgetState removes the state a finished task kept for the journal's
// sake.
func (d *daemon) forgetState(t *journal.Task) { d.s.ForgetStored(stored(t)) }

// removePartial deletes what a cancelled task that was not running kept: a
// download's part and control files, an upload's resume state (so that
// uploading the file again starts a new upload).
func (d *daemon) removePartial(t *journal.Task) { d.s.DiscardStored(stored(t)) }

var (
	errConflict   = errors.New("conflict")
	errUnchanged  = errors.New("unchanged")
	errUnwritable = errors.New("the daemon's journal cannot be written")
)
