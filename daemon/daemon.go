package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/internal/journal"
)

// ErrRunning reports that another daemon already serves the state
// directory or the socket.
var ErrRunning = errors.New("ferry daemon: another daemon is running")

// ErrDamaged reports a journal that cannot be trusted (empty, truncated,
// pages or records that are not what was written). Run sets it aside and
// refuses to start, rather than start empty over the tasks it had;
// Recover builds it again from what is readable.
var ErrDamaged = journal.ErrDamaged

// RecoveryReport says what Recover kept of a damaged journal and what it
// lost; its String method is the summary ferry daemon --recover prints. A
// caller reads:
//
//   - Journal, the journal built again, and From, the damaged file it was
//     built from (kept where it is).
//   - Healthy: there was nothing to recover (the journal is sound, or
//     absent with no damaged copy beside it); only Journal is set then.
//   - Tasks, Unfinished, Sessions, Events: what was kept (the unfinished
//     tasks the daemon carries on with; the events not yet acknowledged).
//   - Lost: the IDs of tasks known to have existed whose record could not
//     be read. Marked of them, those whose session is known, are recorded
//     as failed with a failed event, so that whoever waits for them learns it.
//   - Held: unfinished tasks read only from pages that may be stale, paused
//     rather than run again (resume them if they are still wanted).
//   - Problems: what could not be read.
type RecoveryReport = journal.Report

// journalPath is the journal in a state directory.
func journalPath(stateDir string) string { return filepath.Join(stateDir, "ferry.db") }

// Recover builds the state directory's damaged journal again from what
// is readable in it: every task and event it can read is kept, tasks
// known to be lost are recorded as failed, and the damaged file is kept
// as ferry.db.damaged-TIME. A sound journal is left alone. It fails with
// ErrRunning while a daemon runs on the state directory.
func Recover(cfg Config) (*RecoveryReport, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = bgapi.DefaultStateDir()
	}
	if err := bgapi.PrivateDir(cfg.StateDir, cfg.uid()); err != nil {
		return nil, err
	}
	r, err := journal.Recover(journalPath(cfg.StateDir))
	if errors.Is(err, journal.ErrLocked) {
		return nil, fmt.Errorf("%w with state %s: stop it first", ErrRunning, cfg.StateDir)
	}
	return r, err
}

// Version is reported by GET /v1/health.
var Version = "dev"

// daemon is one running daemon.
type daemon struct {
	cfg  Config
	log  *slog.Logger
	j    *journal.Journal
	s    *ferry.Session
	kick chan struct{} // wakes the scheduler

	runs sync.WaitGroup // the goroutines that follow transfers

	mu       sync.Mutex
	q        queue
	running  map[string]*run   // by task ID
	attached map[string]holder // session -> the client attached to it
	tokens   int
	watch    map[string][]chan struct{} // session -> event watchers
	stopping bool
	quit     chan struct{} // closed when the daemon starts stopping
}

// Run serves until ctx ends, then shuts down gracefully: the API stops,
// running transfers stop where they are (and continue on the next start),
// and the journal is closed.
func Run(ctx context.Context, cfg Config) error {
	if cfg.StateDir == "" {
		cfg.StateDir = bgapi.DefaultStateDir()
	}
	if cfg.Socket == "" {
		cfg.Socket = bgapi.DefaultSocket(cfg.StateDir)
	}
	if cfg.MaxTasks <= 0 {
		cfg.MaxTasks = 4
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := bgapi.PrivateDir(cfg.StateDir, cfg.uid()); err != nil {
		return err
	}
	j, err := journal.Open(journalPath(cfg.StateDir))
	if errors.Is(err, journal.ErrLocked) {
		return fmt.Errorf("%w with state %s", ErrRunning, cfg.StateDir)
	}
	if errors.Is(err, journal.ErrDamaged) {
		return fmt.Errorf("ferry daemon: %w\nThe daemon does not start over a damaged journal. To keep what is readable "+
			"in it and start again, run: ferry daemon --recover --state %s", err, cfg.StateDir)
	}
	if err != nil {
		return err
	}
	defer j.Close()
	ln, err := listen(cfg.Socket, cfg.uid(), cfg.peerUID(), log)
	if err != nil {
		return err
	}
	scfg := cfg.Session
	if scfg.StateDir == "" {
		scfg.StateDir = filepath.Join(cfg.StateDir, "uploads")
	}
	s, err := ferry.NewSession(scfg)
	if err != nil {
		ln.close()
		return err
	}
	d := newDaemon(cfg, log, j, s)

	start := time.Now()
	if err := d.recover(); err != nil {
		ln.close()
		return err
	}
	log.Info("ferry daemon ready", "pid", os.Getpid(), "socket", cfg.Socket, "state", cfg.StateDir, "recovered_in", time.Since(start).Round(time.Millisecond))

	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 10 * time.Second}
	var metrics *http.Server
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.close()
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", d.metrics)
		metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go metrics.Serve(mln)
		log.Info("metrics", "url", "http://"+mln.Addr().String()+"/metrics")
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if cfg.Ready != nil {
		cfg.Ready() // the listener queues connections until Serve takes them
	}
	schedDone := make(chan struct{})
	sctx, stopSched := context.WithCancel(context.Background())
	go func() {
		defer close(schedDone)
		d.schedule(sctx)
	}()
	go d.janitor(sctx)

	select {
	case <-ctx.Done():
	case err = <-served:
	case <-j.Damaged():
		err = fmt.Errorf("ferry daemon: the journal %s was found damaged while in use: stop, then run "+
			"ferry daemon --recover --state %s: %w", journalPath(cfg.StateDir), cfg.StateDir, ErrDamaged)
		log.Error("journal damaged", "err", err)
	}
	log.Info("ferry daemon stopping")
	d.mu.Lock()
	d.stopping = true
	d.mu.Unlock()
	close(d.quit)
	d.notifyAll() // event streams end
	shctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shctx)
	if metrics != nil {
		metrics.Shutdown(shctx)
	}
	stopSched()
	<-schedDone
	d.stopRunning()
	s.Close()
	ln.close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func newDaemon(cfg Config, log *slog.Logger, j *journal.Journal, s *ferry.Session) *daemon {
	return &daemon{cfg: cfg, log: log, j: j, s: s, kick: make(chan struct{}, 1),
		running: map[string]*run{}, attached: map[string]holder{}, watch: map[string][]chan struct{}{},
		q: queue{members: map[string]uint64{}}, quit: make(chan struct{})}
}

// recover makes the tasks a killed daemon left running runnable again; their
// engines continue from their own saved state.
func (d *daemon) recover() error {
	tasks, err := d.j.Unfinished()
	if err != nil {
		return err
	}
	n := 0
	for _, t := range tasks {
		if t.State == bgapi.Running {
			var err error
			if t, _, err = d.j.Update(t.ID, func(t *journal.Task) error { t.State = bgapi.Queued; return nil }, nil); err != nil {
				return err
			}
			n++
		}
		if t.State == bgapi.Queued || t.State == bgapi.Waiting {
			d.enqueue(t)
		}
	}
	if n > 0 {
		d.log.Info("continuing interrupted tasks", "tasks", n)
	}
	return nil
}

// keepFinished is how long a finished task whose events were acknowledged
// stays listed before the journal forgets it.
const keepFinished = 24 * time.Hour

// janitor forgets, every hour, finished tasks acknowledged more than
// keepFinished ago, so the journal does not grow with history.
func (d *daemon) janitor(ctx context.Context) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		sessions, err := d.j.Sessions()
		if err != nil {
			d.log.Warn("listing sessions", "err", err)
		}
		for _, s := range sessions {
			if n, err := d.j.ForgetBefore(s, time.Now().Add(-keepFinished)); err != nil {
				d.log.Warn("forgetting finished tasks", "session", s, "err", err)
			} else if n > 0 {
				d.log.Info("forgot finished tasks", "session", s, "tasks", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
