package ferry

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
)

// State is where a task is in its life.
//
//	Suspended --Resume--> Running --(done)--> Completed
//	    ^                   |  \
//	    +------Suspend------+   +--Cancel--> Canceling --> Completed
type State int

const (
	StateSuspended State = iota // created, or paused by Suspend
	StateRunning
	StateCanceling
	StateCompleted // finished, failed or cancelled; see Err
)

func (s State) String() string {
	return [...]string{"suspended", "running", "canceling", "completed"}[s]
}

// Result describes a finished transfer.
type Result struct {
	URL         string
	Path        string
	Size        int64  // size of the file
	ResumedFrom int64  // bytes already in place (downloads) or on the server (uploads) when this run started
	Downloaded  int64  // bytes received, all runs of this task
	Uploaded    int64  // bytes sent, all runs of this task
	SHA256      string // hex, when asked for
	Proto       string // protocol of the last response, e.g. "HTTP/2.0"
	// Location is an upload's URL on the server; Protocol how it went up;
	// Response the final response body of a multipart upload or a data
	// task (unless DataRequest.Writer took it).
	Location string
	Protocol Protocol
	Response []byte
	// StatusCode and Header are a data task's final response's.
	StatusCode int
	Header     http.Header
	// Verified lists what the file was checked against before it was put
	// in place: "size", "checksum sha-256" (DownloadRequest.Checksum),
	// "repr-digest sha-256" (the server's RFC 9530 Repr-Digest).
	Verified []string
	// HLS holds what an HLS download reports; nil for other tasks.
	HLS     *HLSResult
	Metrics TaskMetrics
}

// Task is one transfer of a Session. Its methods are safe for concurrent use.
type Task struct {
	id     string
	s      *Session
	ctx    context.Context
	work   work
	meter  *transfer.Meter
	events eventQueue

	mu        sync.Mutex
	state     State
	want      intent // what the caller asked of the running task
	deadline  time.Time
	cancelRun context.CancelCauseFunc
	runDone   chan struct{}
	done      chan struct{}
	err       error
	result    *Result
	metrics   TaskMetrics
	conns     map[string]struct{} // the connections counted in metrics
}

// intent is what a caller asked of a running task. The run goroutine acts
// on it when the transfer stops, so a Suspend racing a Cancel, or a Resume
// racing a Suspend, ends the way the last caller meant.
type intent int

const (
	intentRun        intent = iota
	intentSuspend           // stop, keep files, state Suspended
	intentCancelKeep        // stop, keep files, complete with ErrCanceled
	intentCancel            // stop, delete files, complete with ErrCanceled
)

var errStopped = errors.New("ferry: task stopped")

// work is what a task runs: a download or an upload engine, seen through
// the few operations the task's life cycle needs.
type work interface {
	// run transfers until done or ctx ends; it reports through t.meter and
	// t.emit.
	run(ctx context.Context, t *Task) (*Result, error)
	// resumeData describes how to continue after the task stopped.
	resumeData() (*ResumeData, error)
	// discard deletes what the task kept (Cancel).
	discard()
}

func (s *Session) newTask(ctx context.Context, w work) (*Task, error) {
	t := &Task{s: s, ctx: ctx, work: w, meter: transfer.NewMeter(), done: make(chan struct{})}
	if err := s.add(t); err != nil {
		return nil, err
	}
	return t, nil
}

// started resumes the task New* made, for the calls that start at once.
func started(t *Task, err error) (*Task, error) {
	if err != nil {
		return nil, err
	}
	return t, t.Resume()
}

// ID identifies the task within its session.
func (t *Task) ID() string { return t.id }

// State returns the task's state.
func (t *Task) State() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state
}

// Progress returns bytes done and expected and the recent speed.
func (t *Task) Progress() Progress { return Progress(t.meter.Snapshot()) }

// BytesMoved is how many bytes the task has moved over the network so
// far, in all its runs: received by a download, sent by an upload or a
// stream (URLSession's countOfBytesReceived and countOfBytesSent). Unlike
// Progress.Done, it counts bytes moved again after a restart, and none of
// those that were already in place.
func (t *Task) BytesMoved() int64 { return t.meter.Moved() }

// Done is closed when the task completes.
func (t *Task) Done() <-chan struct{} { return t.done }

// Err is the task's error once it has completed (nil on success).
func (t *Task) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Metrics returns the task's metrics so far.
func (t *Task) Metrics() TaskMetrics {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.metrics
	m.Transactions = append([]TransactionMetrics(nil), m.Transactions...)
	return m
}

// Wait blocks until the task completes or ctx is done.
func (t *Task) Wait(ctx context.Context) (*Result, error) {
	select {
	case <-t.done:
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.result, t.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Start starts a created task; it is Resume under the name URLSession users
// look for.
func (t *Task) Start() error { return t.Resume() }

// Resume starts or continues the task. It is a no-op on a running task; on
// a task that is being suspended it waits for that to finish and starts it
// again.
func (t *Task) Resume() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.state == StateRunning && t.want == intentSuspend {
		ch := t.runDone
		t.mu.Unlock()
		<-ch
		t.mu.Lock()
	}
	switch t.state {
	case StateRunning:
		return nil
	case StateCanceling, StateCompleted:
		return ErrTaskCompleted
	}
	if t.metrics.Start.IsZero() {
		t.metrics.Start = time.Now()
		if rt := t.s.cfg.ResourceTimeout; rt > 0 {
			t.deadline = t.metrics.Start.Add(rt)
		}
	}
	ctx, cancel := context.WithCancelCause(t.ctx)
	if !t.deadline.IsZero() {
		var c context.CancelFunc
		ctx, c = context.WithDeadlineCause(ctx, t.deadline, ErrResourceTimeout)
		inner := cancel
		cancel = func(err error) { inner(err); c() }
	}
	t.setStateLocked(StateRunning)
	t.want = intentRun
	t.cancelRun = cancel
	t.runDone = make(chan struct{})
	go t.run(ctx, cancel, t.runDone)
	return nil
}

// Suspend pauses a running task, keeping what it has fetched, and returns
// once it has stopped. Resume continues it.
func (t *Task) Suspend() {
	if ch := t.stop(intentSuspend); ch != nil {
		<-ch
	}
}

// Cancel stops the task and deletes what it fetched. It returns at once;
// Done is closed when the task has stopped.
func (t *Task) Cancel() { t.stop(intentCancel) }

// stop asks the running task to stop for the given reason, or ends a
// suspended one at once. It returns the channel closed when the running
// task has stopped, or nil. A stronger intent overrides a weaker one
// (Cancel beats CancelWithResumeData beats Suspend), never the reverse.
func (t *Task) stop(why intent) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch t.state {
	case StateRunning, StateCanceling:
		if why > t.want {
			t.want = why
		}
		if t.want >= intentCancelKeep {
			t.setStateLocked(StateCanceling)
		}
		t.cancelRun(errStopped)
		return t.runDone
	case StateSuspended:
		switch why {
		case intentCancel:
			t.work.discard()
			t.completeLocked(nil, ErrCanceled)
		case intentCancelKeep:
			t.completeLocked(nil, ErrCanceled)
		}
	}
	return nil
}

// stopIfSuspended ends a suspended task, keeping its files.
func (t *Task) stopIfSuspended() {
	t.mu.Lock()
	suspended := t.state == StateSuspended
	t.mu.Unlock()
	if suspended {
		t.stop(intentCancelKeep)
	}
}

// CancelWithResumeData stops the task, keeps what it fetched and returns the
// data to continue it with, possibly in another process. It returns once the
// task has stopped. If the task completed first, it returns ErrTaskCompleted.
func (t *Task) CancelWithResumeData() (*ResumeData, error) {
	if t.State() == StateCompleted {
		return nil, ErrTaskCompleted
	}
	if ch := t.stop(intentCancelKeep); ch != nil {
		<-ch
	}
	if t.Err() == nil {
		return nil, ErrTaskCompleted // it finished before it could be stopped
	}
	return t.work.resumeData()
}

func (t *Task) run(ctx context.Context, cancel context.CancelCauseFunc, runDone chan struct{}) {
	defer close(runDone)
	defer cancel(nil)
	stop := t.tickProgress()
	res, err := t.work.run(ctx, t)
	stop()
	t.s.keepCookies()

	t.mu.Lock()
	defer t.mu.Unlock()
	stopped := err != nil && errors.Is(context.Cause(ctx), errStopped)
	switch {
	case err == nil:
		t.completeLocked(res, nil)
	case stopped && t.want == intentSuspend:
		t.setStateLocked(StateSuspended)
	case stopped && t.want == intentCancel:
		t.work.discard()
		t.completeLocked(nil, ErrCanceled)
	case stopped:
		t.completeLocked(nil, ErrCanceled)
	default:
		t.completeLocked(nil, err)
	}
}

// setStateLocked moves the task to state, and tells of it when it is new.
func (t *Task) setStateLocked(state State) {
	if t.state == state {
		return
	}
	t.state = state
	t.events.push(StateEvent{State: state})
}

// completeLocked records the outcome and delivers the last event.
func (t *Task) completeLocked(res *Result, err error) {
	err = publicError(err)
	t.setStateLocked(StateCompleted)
	t.conns = nil // counted
	// A background task's metrics end where its daemon's run ended.
	if t.metrics.End.IsZero() {
		t.metrics.End = time.Now()
	}
	if t.metrics.Start.IsZero() {
		t.metrics.Start = t.metrics.End
	}
	m := t.metrics
	m.Transactions = append([]TransactionMetrics(nil), m.Transactions...)
	if res != nil {
		res.Metrics = m
	}
	t.result, t.err = res, err
	t.meter.Sample(time.Now())
	t.events.push(ProgressEvent{Progress: Progress(t.meter.Snapshot())})
	t.events.push(DoneEvent{Err: err, Metrics: m})
	t.events.close()
	close(t.done)
}

// engineEmit is Env.Emit: an engine's event, shown as the public API's.
func (t *Task) engineEmit(ev transfer.Event) { t.emit(publicEvent(ev)) }

// emit records what metrics need from an event and queues it for Events.
func (t *Task) emit(ev Event) {
	t.mu.Lock()
	switch e := ev.(type) {
	case MetricsEvent:
		if len(t.metrics.Transactions) < maxTransactions {
			t.metrics.Transactions = append(t.metrics.Transactions, e.Transaction)
		}
		t.countConn(e.Transaction)
	case RedirectEvent:
		t.metrics.Redirects++
	case RetryEvent:
		t.metrics.Retries++
	case RestartEvent:
		t.metrics.Restarts++
	}
	t.mu.Unlock()
	t.events.push(ev)
}

// countConn counts the connection tx ran on if it is new to the task. Past
// maxConnsTracked a connection counts when its first request was tx, as
// the transport reports it (which misses one dialled for a request and
// handed to another), so that memory does not grow with a long run that
// renews its connections.
func (t *Task) countConn(tx TransactionMetrics) {
	c := transfer.TransactionMetrics(tx).Conn()
	if c == "" {
		return
	}
	if len(t.conns) >= maxConnsTracked {
		if !tx.ReusedConn {
			t.metrics.Connections++
		}
		return
	}
	if _, seen := t.conns[c]; seen {
		return
	}
	if t.conns == nil {
		t.conns = map[string]struct{}{}
	}
	t.conns[c] = struct{}{}
	t.metrics.Connections++
}

const maxConnsTracked = 1024

// maxTransactions bounds the per-task transaction log of a long, flaky run.
const maxTransactions = 1000

// tickProgress samples the meter and queues a progress event four times a
// second until stop is called.
func (t *Task) tickProgress() (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		t.meter.Sample(time.Now())
		for {
			select {
			case <-quit:
				return
			case now := <-tk.C:
				t.meter.Sample(now)
				t.events.push(ProgressEvent{Progress: Progress(t.meter.Snapshot())})
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// Events returns the task's event stream, from its first event to the
// DoneEvent, after which the channel is closed. Every call returns the same
// channel; read it until it is closed (or close the session). Events are
// queued, so a slow reader never holds up the transfer: progress events
// collapse into the newest, and a reader more than 1024 events behind
// loses the oldest.
func (t *Task) Events() <-chan Event { return t.events.subscribe() }
