package ferry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// WithDefaults is dc with its empty fields set as a background session
// sets them: StateDir $XDG_STATE_HOME/ferry (or ~/.local/state/ferry),
// Socket $FERRY_SOCKET or daemon.sock in StateDir.
func (dc DaemonConfig) WithDefaults() DaemonConfig {
	if dc.StateDir == "" {
		dc.StateDir = bgapi.DefaultStateDir()
	}
	if dc.Socket == "" {
		dc.Socket = os.Getenv("FERRY_SOCKET")
	}
	if dc.Socket == "" {
		dc.Socket = bgapi.DefaultSocket(dc.StateDir)
	}
	return dc
}

// Daemon manages the background daemon's tasks for a program that does
// not run them as their session, as ferry bg, ls, wait and events do: it
// queues tasks in any session, lists them, pauses, resumes and cancels
// them, and reads a session's events. A program that hands its own
// transfers to the daemon and wants their results opens a Session with
// Config.Background instead.
//
// Queueing starts a daemon when none runs, as a background session does;
// the other methods fail with ErrNoDaemon then.
type Daemon struct {
	dc DaemonConfig
	c  *bgapi.Client
}

// NewDaemon returns a Daemon for the daemon dc locates. It connects on
// first use.
func NewDaemon(dc DaemonConfig) *Daemon {
	dc = dc.WithDefaults()
	return &Daemon{dc: dc, c: bgapi.NewClient(dc.Socket)}
}

// Close releases the Daemon's idle connections.
func (d *Daemon) Close() error {
	d.c.Close()
	return nil
}

// BackgroundTask is what the daemon says about a task.
type BackgroundTask struct {
	ID      string
	Session string
	// Kind is "get", "put" or "hls".
	Kind string
	// State is queued, running, paused, waiting (for its host: tried
	// again at NextTry), done, failed or canceled.
	State    string
	Schedule Schedule
	NextTry  time.Time
	Tries    int // attempts so far
	Created  time.Time
	Updated  time.Time
	// Stored is the task's request as the daemon keeps it.
	Stored StoredTask
	// Progress is a running task's, nil before anything is known.
	Progress *Progress
	// Result is a done task's.
	Result *Result
	// Err says why a task failed, or why it waits.
	Err error

	wire bgapi.Task
}

// Ended reports whether the task will not change again: done, failed or
// canceled.
func (t *BackgroundTask) Ended() bool { return bgapi.State(t.State).Terminal() }

// MarshalJSON writes the task as the daemon's API does (docs/API.md).
func (t *BackgroundTask) MarshalJSON() ([]byte, error) { return json.Marshal(t.wire) }

func publicTask(bt *bgapi.Task) *BackgroundTask {
	t := &BackgroundTask{
		ID: bt.ID, Session: bt.Session, Kind: bt.Kind, State: string(bt.State),
		Schedule: Schedule{Priority: bt.Priority, NotBefore: bt.NotBefore},
		NextTry:  bt.NextTry, Tries: bt.Tries, Created: bt.Created, Updated: bt.Updated,
		Stored: storedOf(bt), Result: fromBackground(bt.Result), wire: *bt,
	}
	if p := bt.Progress; p != nil {
		t.Progress = &Progress{Done: p.Done, Expected: p.Expected, Speed: p.Speed}
	}
	if bt.Error != "" {
		t.Err = backgroundError(bt.Error, bt.Failure)
	}
	return t
}

// storedOf is the task's request as a StoredTask. A journal written before
// requests were kept as their kind's spec holds the whole request the
// daemon was sent, with the spec inside.
func storedOf(bt *bgapi.Task) StoredTask {
	var nt bgapi.NewTask
	if json.Unmarshal(bt.Request, &nt) == nil && nt.Kind() != "" {
		if spec, err := nt.Spec(); err == nil {
			return StoredTask{Kind: nt.Kind(), Spec: spec}
		}
	}
	return StoredTask{Kind: bt.Kind, Spec: bt.Request}
}

func backgroundTasks(bts []bgapi.Task, err error) ([]*BackgroundTask, error) {
	if err != nil {
		return nil, err
	}
	ts := make([]*BackgroundTask, len(bts))
	for i := range bts {
		ts[i] = publicTask(&bts[i])
	}
	return ts, nil
}

func oneTask(bt *bgapi.Task, err error) (*BackgroundTask, error) {
	if err != nil {
		return nil, err
	}
	return publicTask(bt), nil
}

// Download queues req in session, as a background session's NewDownload
// would, and returns the task.
func (d *Daemon) Download(ctx context.Context, session string, req DownloadRequest) (*BackgroundTask, error) {
	stream, err := req.check()
	if err != nil {
		return nil, err
	}
	nt, err := downloadTask(req, req.Header, stream)
	if err != nil {
		return nil, err
	}
	return d.create(ctx, session, nt)
}

// Upload queues req in session, as a background session's NewUpload
// would, and returns the task.
func (d *Daemon) Upload(ctx context.Context, session string, req UploadRequest) (*BackgroundTask, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	nt, err := uploadTask(req, req.Header)
	if err != nil {
		return nil, err
	}
	return d.create(ctx, session, nt)
}

// HLS queues req in session, as a background session's HLS would, and
// returns the task.
func (d *Daemon) HLS(ctx context.Context, session string, req HLSRequest) (*BackgroundTask, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	nt, err := hlsTask(req, req.Header)
	if err != nil {
		return nil, err
	}
	return d.create(ctx, session, nt)
}

func (d *Daemon) create(ctx context.Context, session string, nt bgapi.NewTask) (*BackgroundTask, error) {
	if err := ensureDaemon(ctx, d.c, d.dc); err != nil {
		return nil, err
	}
	bt, err := d.c.Create(ctx, session, nt)
	if e, ok := errors.AsType[*bgapi.Error](err); ok && e.Problem.Type == bgapi.ProblemBadRequest {
		err = fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return oneTask(bt, err)
}

// Tasks lists the tasks of session, or of every session for "".
func (d *Daemon) Tasks(ctx context.Context, session string) ([]*BackgroundTask, error) {
	return backgroundTasks(d.c.Tasks(ctx, session))
}

// Task returns the task with the ID, or ErrNoTask.
func (d *Daemon) Task(ctx context.Context, id string) (*BackgroundTask, error) {
	return oneTask(d.c.Task(ctx, id))
}

// Wait returns the task once it has ended, or when ctx does.
func (d *Daemon) Wait(ctx context.Context, id string) (*BackgroundTask, error) {
	return oneTask(d.c.Wait(ctx, id))
}

// Pause, Resume and Cancel act on a task and return it as it is then.
func (d *Daemon) Pause(ctx context.Context, id string) (*BackgroundTask, error) {
	return oneTask(d.c.Pause(ctx, id))
}

func (d *Daemon) Resume(ctx context.Context, id string) (*BackgroundTask, error) {
	return oneTask(d.c.Resume(ctx, id))
}

func (d *Daemon) Cancel(ctx context.Context, id string) (*BackgroundTask, error) {
	return oneTask(d.c.Cancel(ctx, id))
}

// EventsOptions say how Daemon.Events reads a session's log.
type EventsOptions struct {
	// After is the last event already had; 0 reads from the oldest kept.
	After uint64
	// Follow keeps reading events as they come, until ctx ends or the
	// daemon stops. It attaches to the session, as a background session
	// does: another process cannot attach meanwhile (ErrSessionInUse).
	Follow bool
}

// Events hands the events of session after o.After to fn, in order, until
// the log is read (or, with o.Follow, until ctx ends or fn fails). With
// Follow, a nil error means the daemon ended the stream.
func (d *Daemon) Events(ctx context.Context, session string, o EventsOptions, fn func(BackgroundEvent) error) error {
	var token string
	defer func() {
		if token != "" { // let go of the session now, not when the daemon notices
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			d.c.Release(rctx, session, token)
			cancel()
		}
	}()
	opts := bgapi.EventsOptions{After: o.After, Follow: o.Follow, Attach: o.Follow, OnOpen: func(t string) { token = t }}
	return d.c.Events(ctx, session, opts, func(e bgapi.Event) error { return fn(backgroundEvent(e)) })
}

// Ack tells the daemon every event of session up to seq is handled: they
// are not delivered again.
func (d *Daemon) Ack(ctx context.Context, session string, seq uint64) error {
	return d.c.Ack(ctx, session, seq)
}
