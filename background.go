package ferry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// DaemonConfig locates the daemon that runs a background session's tasks.
type DaemonConfig struct {
	// StateDir is the daemon's state directory ("" means
	// $XDG_STATE_HOME/ferry, or ~/.local/state/ferry).
	StateDir string
	// Socket is its API socket ("" means StateDir/daemon.sock).
	Socket string
	// Command starts a daemon when none answers; "--state DIR --socket
	// PATH" are appended. nil means "ferry daemon", ferry found in PATH.
	Command []string
}

// ErrSessionInUse reports a background session whose identifier another
// live process is using.
var ErrSessionInUse = bgapi.ErrSessionInUse

// ErrNoDaemon reports that no daemon runs and none could be started.
var ErrNoDaemon = bgapi.ErrNoDaemon

// ErrNoTask reports a background task the daemon does not have.
var ErrNoTask = bgapi.ErrNotFound

// BackgroundEvent is an entry of a background session's event log: a
// change of one of its tasks, recorded by the daemon whether or not a
// program was there to see it, and kept until acknowledged (Session.Ack).
// Delivery is at least once: an event not acknowledged comes again to the
// next session opened with the same identifier.
type BackgroundEvent struct {
	Seq  uint64 // in the session's log, from 1
	Task string // the task's ID
	// Type is created, started, paused, resumed, waiting (for
	// connectivity), done, failed or canceled.
	Type   string
	Time   time.Time
	Result *Result // of a done task
	Err    error   // of a failed task, or why it waits

	wire bgapi.Event
}

// MarshalJSON writes the event as the daemon's API does (docs/API.md).
func (e BackgroundEvent) MarshalJSON() ([]byte, error) { return json.Marshal(e.wire) }

// background is a session's link to its daemon.
type background struct {
	id     string
	dc     DaemonConfig
	c      *bgapi.Client
	events chan BackgroundEvent
	stop   context.CancelFunc
	ended  chan struct{} // the event stream is over

	mu      sync.Mutex
	token   string                   // the daemon's name for this attachment
	waiters map[string]chan struct{} // task ID -> woken on its events
}

// attach connects the session to the daemon, starting one if none runs,
// and takes the session's identifier for this process.
func (s *Session) attach() error {
	dc := s.cfg.Daemon.WithDefaults()
	c := bgapi.NewClient(dc.Socket)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := ensureDaemon(ctx, c, dc); err != nil {
		return err
	}

	bctx, stop := context.WithCancel(context.Background())
	bg := &background{id: s.cfg.Background, dc: dc, c: c, events: make(chan BackgroundEvent, 64), stop: stop,
		ended: make(chan struct{}), waiters: map[string]chan struct{}{}}
	opened := make(chan struct{})
	failed := make(chan error, 1)
	go bg.follow(bctx, s, opened, failed)
	select {
	case <-opened:
	case err := <-failed:
		stop()
		return fmt.Errorf("ferry: background session %q: %w", bg.id, err)
	case <-ctx.Done():
		stop()
		return fmt.Errorf("ferry: background session %q: the daemon did not answer", bg.id)
	}
	s.bg = bg

	// The tasks the session already has in the daemon come back as tasks;
	// paused ones stay suspended until Resume.
	ts, err := c.Tasks(ctx, bg.id)
	if err != nil {
		bg.close()
		return err
	}
	for _, bt := range ts {
		w := &bgWork{s: s, id: bt.ID, suspended: bt.State == bgapi.Paused}
		t, err := s.newTask(context.Background(), w)
		if err != nil {
			bg.close()
			return err
		}
		if !w.suspended {
			t.Resume()
		}
	}
	return nil
}

// ensureDaemon starts a daemon when none answers.
func ensureDaemon(ctx context.Context, c *bgapi.Client, dc DaemonConfig) error {
	_, err := c.Health(ctx)
	if !errors.Is(err, bgapi.ErrNoDaemon) {
		return err
	}
	if err := startDaemon(dc); err != nil {
		return err
	}
	if err := c.WaitReady(ctx, 10*time.Second); err != nil {
		return fmt.Errorf("ferry: the daemon did not come up (see %s): %w", filepath.Join(dc.StateDir, "daemon.log"), err)
	}
	return nil
}

// follow reads the session's events from the daemon, attached, and hands
// them on. When the daemon goes away (restarted, killed), it starts one
// again and reattaches, continuing after the last event it passed on; it
// gives up only if another process took the session meanwhile, or after a
// few minutes without a daemon.
func (bg *background) follow(ctx context.Context, s *Session, opened chan<- struct{}, failed chan<- error) {
	defer close(bg.ended)
	defer close(bg.events)
	var after uint64
	first, misses := true, 0
	for {
		err := bg.c.Events(ctx, bg.id, bgapi.EventsOptions{After: after, Follow: true, Attach: true,
			OnOpen: func(token string) {
				bg.mu.Lock()
				bg.token = token
				bg.mu.Unlock()
				misses = 0
				if first {
					first = false
					close(opened)
				}
			}},
			func(e bgapi.Event) error {
				bg.wakeTask(e.Task)
				select {
				case bg.events <- backgroundEvent(e):
					after = e.Seq
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		switch {
		case ctx.Err() != nil:
			return
		case first:
			if err == nil {
				err = errors.New("the daemon ended the event stream")
			}
			failed <- err
			return
		case errors.Is(err, ErrSessionInUse):
			return // taken while the daemon was away: this session is over
		}
		misses++
		if misses > 120 {
			return
		}
		if errors.Is(err, bgapi.ErrNoDaemon) && misses%10 == 1 {
			startDaemon(bg.dc) // a second one started meanwhile fails on the lock: harmless
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(50*time.Millisecond<<min(misses, 6), 2*time.Second)):
		}
	}
}

// close ends the link: the event stream stops and the session's identifier
// is free for the next process at once.
func (bg *background) close() {
	bg.stop()
	<-bg.ended
	bg.mu.Lock()
	token := bg.token
	bg.mu.Unlock()
	if token != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		bg.c.Release(ctx, bg.id, token) // refused if the daemon noticed first: fine
		cancel()
	}
	bg.c.Close()
}

// startDaemon starts "ferry daemon" in its own session, so that it outlives
// this program, with its log in the state directory.
func startDaemon(dc DaemonConfig) error {
	argv := dc.Command
	if len(argv) == 0 {
		bin, err := exec.LookPath("ferry")
		if err != nil {
			return fmt.Errorf("%w, and none could be started: %v", ErrNoDaemon, err)
		}
		argv = []string{bin, "daemon"}
	}
	// The log goes into the state directory: only if it is this user's
	// alone, and never through a link.
	if err := bgapi.PrivateDir(dc.StateDir, os.Geteuid()); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dc.StateDir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], append(argv[1:], "--state", dc.StateDir, "--socket", dc.Socket)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w, and %s did not start: %v", ErrNoDaemon, argv[0], err)
	}
	return cmd.Process.Release()
}

func (bg *background) wakeTask(id string) {
	bg.mu.Lock()
	ch := bg.waiters[id]
	bg.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (bg *background) waiter(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	bg.mu.Lock()
	bg.waiters[id] = ch
	bg.mu.Unlock()
	return ch, func() {
		bg.mu.Lock()
		delete(bg.waiters, id)
		bg.mu.Unlock()
	}
}

func backgroundEvent(e bgapi.Event) BackgroundEvent {
	ev := BackgroundEvent{Seq: e.Seq, Task: e.Task, Type: e.Type, Time: e.Time, Result: fromBackground(e.Result), wire: e}
	if e.Error != "" {
		ev.Err = backgroundError(e.Error, e.Failure)
	}
	return ev
}

// backgroundError is the error the daemon reported as msg: an *Error, with
// a *StatusError cause for a response that ended it, when the daemon said
// its parts (f), as every library failure has them.
func backgroundError(msg string, f *bgapi.Failure) error {
	if f == nil {
		return errors.New(msg)
	}
	var cause error = errors.New(f.Cause)
	if f.Status != 0 {
		cause = &reported{f.Cause, &StatusError{StatusCode: f.Status, Status: f.StatusLine}}
	}
	return &Error{Op: f.Op, URL: f.URL, Err: cause}
}

// reported is a cause as the daemon reported it, with the status of the
// response that ended the transfer.
type reported struct {
	text   string
	status *StatusError
}

func (r *reported) Error() string { return r.text }
func (r *reported) Unwrap() error { return r.status }

func fromBackground(r *bgapi.Result) *Result {
	if r == nil {
		return nil
	}
	res := &Result{URL: r.URL, Path: r.Path, Location: r.Location, Size: r.Size, ResumedFrom: r.ResumedFrom,
		Downloaded: r.Downloaded, Uploaded: r.Uploaded, SHA256: r.SHA256, Proto: r.Proto,
		Protocol: Protocol(r.Protocol), Response: r.Response, Verified: r.Verified}
	json.Unmarshal(r.Metrics, &res.Metrics) // none from an older daemon
	if r.Segments > 0 {
		res.HLS = &HLSResult{Segments: r.Segments}
	}
	return res
}

// BackgroundEvents delivers a background session's event log, in order:
// first what happened while no program was attached, then events as they
// come. Acknowledge what you have handled with Ack. The channel is closed
// when the session is closed. It is nil for other sessions.
func (s *Session) BackgroundEvents() <-chan BackgroundEvent {
	if s.bg == nil {
		return nil
	}
	return s.bg.events
}

// Ack tells the daemon the program has handled every event of the session
// up to seq: they are not delivered again.
func (s *Session) Ack(seq uint64) error {
	if s.bg == nil {
		return errors.New("ferry: Ack: not a background session")
	}
	return s.bg.c.Ack(context.Background(), s.bg.id, seq)
}

// bgWork is a task the daemon runs: this side follows it, and passes on
// pause, resume and cancel.
type bgWork struct {
	s  *Session
	id string // the daemon's
	// suspended is set while the task is paused through this session (or
	// was found paused): Resume resumes it in the daemon. A pause made
	// elsewhere (ferry pause) is not undone behind its author's back.
	suspended bool
}

// controlTimeout bounds one request to the daemon.
const controlTimeout = 30 * time.Second

func (w *bgWork) run(ctx context.Context, t *Task) (*Result, error) {
	bg := w.s.bg
	wake, done := bg.waiter(w.id)
	defer done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		rctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
		bt, err := bg.c.Task(rctx, w.id)
		if err == nil && bt.State == bgapi.Paused && w.suspended {
			bt, err = bg.c.Resume(rctx, w.id)
			if err == nil {
				w.suspended = false
			}
		}
		cancel()
		switch {
		case errors.Is(err, bgapi.ErrNotFound):
			return nil, err
		case err != nil:
			// The daemon is away (restarting): it keeps the task; look
			// again in a while.
		case bt.State == bgapi.Done:
			res := fromBackground(bt.Result)
			if res == nil {
				res = &Result{}
			}
			t.meter.Reset(res.Size, res.Size)
			t.mu.Lock()
			t.metrics = res.Metrics // the daemon's run's, which the task reports
			t.mu.Unlock()
			return res, nil
		case bt.State == bgapi.Failed:
			return nil, backgroundError(bt.Error, bt.Failure)
		case bt.State == bgapi.Canceled:
			return nil, ErrCanceled
		default:
			if p := bt.Progress; p != nil {
				t.meter.Reset(p.Done, p.Expected)
			}
		}
		select {
		case <-ctx.Done():
			t.mu.Lock()
			suspend := t.want == intentSuspend
			t.mu.Unlock()
			if suspend {
				rctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
				if _, err := bg.c.Pause(rctx, w.id); err == nil {
					w.suspended = true
				}
				cancel()
			}
			// Otherwise the program is closing the session or leaving:
			// the daemon carries on.
			return nil, context.Cause(ctx)
		case <-wake:
		case <-tick.C:
		}
	}
}

func (w *bgWork) resumeData() (*ResumeData, error) { return nil, ErrNotResumable }

// discard cancels the task in the daemon, which deletes its partial files.
func (w *bgWork) discard() {
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
	defer cancel()
	w.s.bg.c.Cancel(ctx, w.id)
}

// Schedule orders a background session's queued tasks; the daemon starts
// a queued task when it has room, the highest Priority first, then the
// oldest. A foreground session starts its tasks when asked and refuses a
// request with a Schedule.
type Schedule struct {
	// Priority orders queued tasks: higher first (0 is the default;
	// negative waits behind the default).
	Priority int
	// NotBefore holds the task back until then, as URLSession's
	// earliestBeginDate does.
	NotBefore time.Time
}

// foreground refuses sch for a foreground session's request.
func (sch Schedule) foreground() error {
	if sch != (Schedule{}) {
		return fmt.Errorf("%w: Priority and NotBefore are for background sessions", ErrInvalidRequest)
	}
	return nil
}

// backgroundTask hands a request to the daemon, which queues it at once,
// and returns the task that follows it here (it needs Resume to follow).
func (s *Session) backgroundTask(ctx context.Context, nt bgapi.NewTask) (*Task, error) {
	bt, err := s.bg.c.Create(ctx, s.bg.id, nt)
	if err != nil {
		return nil, err
	}
	return s.newTask(ctx, &bgWork{s: s, id: bt.ID})
}

func (s *Session) backgroundDownload(ctx context.Context, req DownloadRequest, stream bool) (*Task, error) {
	nt, err := downloadTask(req, mergeHeaders(s.cfg.Header, req.Header), stream)
	if err != nil {
		return nil, err
	}
	return s.backgroundTask(ctx, nt)
}

// downloadTask is req as the daemon is sent it, with header h.
func downloadTask(req DownloadRequest, h http.Header, stream bool) (bgapi.NewTask, error) {
	switch {
	case stream:
		return bgapi.NewTask{}, fmt.Errorf("%w: a background download writes a regular file, not a stream", ErrInvalidRequest)
	case req.ResumeData != nil || req.Continue:
		return bgapi.NewTask{}, fmt.Errorf("%w: ResumeData and Continue are not for background sessions", ErrInvalidRequest)
	}
	spec, err := downloadSpec(req, h)
	return scheduled(req.Schedule, bgapi.NewTask{Get: spec}), err
}

func (s *Session) backgroundUpload(ctx context.Context, req UploadRequest) (*Task, error) {
	nt, err := uploadTask(req, mergeHeaders(s.cfg.Header, req.Header))
	if err != nil {
		return nil, err
	}
	return s.backgroundTask(ctx, nt)
}

// uploadTask is req as the daemon is sent it, with header h.
func uploadTask(req UploadRequest, h http.Header) (bgapi.NewTask, error) {
	spec, err := uploadSpec(req, h)
	return scheduled(req.Schedule, bgapi.NewTask{Put: spec}), err
}

// scheduled is nt with sch.
func scheduled(sch Schedule, nt bgapi.NewTask) bgapi.NewTask {
	nt.Priority, nt.NotBefore = sch.Priority, sch.NotBefore
	return nt
}

func (s *Session) backgroundHLS(ctx context.Context, req HLSRequest) (*Task, error) {
	nt, err := hlsTask(req, mergeHeaders(s.cfg.Header, req.Header))
	if err != nil {
		return nil, err
	}
	return s.backgroundTask(ctx, nt)
}

// hlsTask is req as the daemon is sent it, with header h.
func hlsTask(req HLSRequest, h http.Header) (bgapi.NewTask, error) {
	if req.StopLive != nil {
		return bgapi.NewTask{}, fmt.Errorf("%w: StopLive is not for background sessions", ErrInvalidRequest)
	}
	spec, err := hlsSpec(req, h)
	return scheduled(req.Schedule, bgapi.NewTask{HLS: spec}), err
}
