package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/internal/journal"
	"github.com/ferryhq/ferry/internal/problem"
)

func (d *daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", d.health)
	mux.HandleFunc("POST /v1/sessions/{session}/tasks", d.create)
	mux.HandleFunc("GET /v1/sessions/{session}/events", d.events)
	mux.HandleFunc("POST /v1/sessions/{session}/ack", d.ack)
	mux.HandleFunc("DELETE /v1/sessions/{session}", d.closeSession)
	mux.HandleFunc("DELETE /v1/sessions/{session}/attach", d.release)
	mux.HandleFunc("GET /v1/tasks", d.list)
	mux.HandleFunc("GET /v1/tasks/{id}", d.get)
	mux.HandleFunc("GET /v1/tasks/{id}/wait", d.wait)
	mux.HandleFunc("POST /v1/tasks/{id}/{action}", d.act)
	return mux
}

// decodeBody reads a request body of at most limit bytes that is exactly
// one JSON value of v's shape: no unknown field, nothing after it.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// refuse answers an error as RFC 9457 problem details, which the client
// reads as a bgapi.Problem.
func refuse(w http.ResponseWriter, status int, typ, title, detail string) {
	problem.Write(w, nil, problem.Details{Type: typ, Title: title, Status: status, Detail: detail})
}

// fail answers err with the status that fits it.
func fail(w http.ResponseWriter, err error) {
	var inv *journal.InvalidSessionError
	switch {
	case errors.Is(err, journal.ErrNotFound):
		refuse(w, http.StatusNotFound, bgapi.ProblemNotFound, "no such task", "")
	case errors.As(err, &inv):
		refuse(w, http.StatusBadRequest, bgapi.ProblemBadRequest, "invalid session identifier", err.Error())
	case errors.Is(err, errConflict):
		refuse(w, http.StatusConflict, bgapi.ProblemConflict, "the task cannot do that now", err.Error())
	case errors.Is(err, errUnwritable):
		refuse(w, http.StatusInsufficientStorage, "", "the daemon's journal cannot be written", err.Error())
	case errors.Is(err, syscall.ENOSPC):
		refuse(w, http.StatusInsufficientStorage, "", "no space left for the daemon's journal", err.Error())
	case errors.Is(err, journal.ErrDamaged):
		refuse(w, http.StatusServiceUnavailable, "", "the daemon's journal is damaged", err.Error())
	default:
		refuse(w, http.StatusInternalServerError, "", "internal error", err.Error())
	}
}

func (d *daemon) health(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	running := d.transferring()
	queued := len(d.q.members)
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, bgapi.Health{PID: os.Getpid(), Version: Version, StateDir: d.cfg.StateDir,
		Tasks: running + queued, Running: running})
}

func (d *daemon) create(w http.ResponseWriter, r *http.Request) {
	var nt bgapi.NewTask
	if err := decodeBody(w, r, 1<<20, &nt); err != nil {
		refuse(w, http.StatusBadRequest, bgapi.ProblemBadRequest, "malformed task", err.Error())
		return
	}
	kind := nt.Kind()
	if kind == "" {
		refuse(w, http.StatusBadRequest, bgapi.ProblemBadRequest, "malformed task", "exactly one of get, put and hls is needed")
		return
	}
	req, err := checkRequest(&nt)
	if err != nil {
		refuse(w, http.StatusBadRequest, bgapi.ProblemBadRequest, "invalid "+kind+" request", err.Error())
		return
	}
	t, ev, err := d.j.Create(&journal.Task{Session: r.PathValue("session"), Kind: kind, Request: req,
		Priority: nt.Priority, NotBefore: nt.NotBefore.UTC(), State: bgapi.Queued})
	if err != nil {
		fail(w, err)
		return
	}
	d.mu.Lock()
	d.enqueue(t)
	d.mu.Unlock()
	d.notify(ev.Session)
	d.wake()
	writeJSON(w, http.StatusCreated, d.apiTask(t))
}

// checkRequest refuses what the daemon could never run, so that a mistake
// is told to the caller rather than found later (ferry.StoredTask.Check),
// and returns the spec to keep.
func checkRequest(nt *bgapi.NewTask) (json.RawMessage, error) {
	spec, err := nt.Spec()
	if err != nil {
		return nil, err
	}
	return ferry.StoredTask{Kind: nt.Kind(), Spec: spec}.Check()
}

func (d *daemon) list(w http.ResponseWriter, r *http.Request) {
	ts, err := d.j.Tasks(r.URL.Query().Get("session"))
	if err != nil {
		fail(w, err)
		return
	}
	out := make([]bgapi.Task, 0, len(ts))
	for _, t := range ts {
		out = append(out, d.apiTask(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *daemon) get(w http.ResponseWriter, r *http.Request) {
	t, err := d.j.Task(r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d.apiTask(t))
}

// wait answers once the task is in a terminal state, or after ?timeout
// (at most a minute) with the task as it is.
func (d *daemon) wait(w http.ResponseWriter, r *http.Request) {
	timeout, err := time.ParseDuration(r.URL.Query().Get("timeout"))
	if err != nil || timeout <= 0 {
		timeout = 30 * time.Second
	}
	timeout = min(timeout, time.Minute)
	id := r.PathValue("id")
	t, err := d.j.Task(id)
	if err != nil {
		fail(w, err)
		return
	}
	changed, stop := d.watcher(t.Session)
	defer stop()
	// Read again now that changes are watched: none is missed in between.
	if t, err = d.j.Task(id); err != nil {
		fail(w, err)
		return
	}
	deadline := time.After(timeout)
	for !t.State.Terminal() {
		select {
		case <-changed:
		case <-deadline:
			writeJSON(w, http.StatusOK, d.apiTask(t))
			return
		case <-r.Context().Done():
			return
		}
		if t, err = d.j.Task(id); err != nil {
			fail(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, d.apiTask(t))
}

func (d *daemon) act(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	switch action {
	case "pause", "resume", "cancel":
	default:
		refuse(w, http.StatusNotFound, bgapi.ProblemNotFound, "no such action", action)
		return
	}
	t, err := d.control(r.PathValue("id"), action)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d.apiTask(t))
}

// events streams the session's events after ?after as NDJSON: what is
// kept, then (with ?follow) new ones as they are recorded. With ?attach the
// stream holds the session: another attach is refused while it is open.
func (d *daemon) events(w http.ResponseWriter, r *http.Request) {
	session := r.PathValue("session")
	q := r.URL.Query()
	after, err := strconv.ParseUint(q.Get("after"), 10, 64)
	if err != nil && q.Get("after") != "" {
		refuse(w, http.StatusBadRequest, bgapi.ProblemBadRequest, "invalid after", err.Error())
		return
	}
	follow, attach := q.Get("follow") == "1", q.Get("attach") == "1"
	if err := journal.CheckSession(session); err != nil {
		fail(w, err)
		return
	}
	// Read before answering, so that a failure is a problem, not an empty
	// stream.
	evs, err := d.j.Events(session, after, 1000)
	if err != nil {
		fail(w, err)
		return
	}
	if attach {
		pid, _ := strconv.Atoi(r.Header.Get("Ferry-Client-Pid"))
		h, ok := d.attach(session, pid)
		if !ok {
			who := "another process"
			if h.pid > 0 {
				who += fmt.Sprintf(" (pid %d)", h.pid)
			}
			refuse(w, http.StatusConflict, bgapi.ProblemSessionInUse, "session in use",
				fmt.Sprintf("session %q is attached by %s", session, who))
			return
		}
		defer d.detach(session, h.token)
		w.Header().Set("Ferry-Attach-Token", h.token)
	}
	changed, stop := d.watcher(session)
	defer stop()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	enc := json.NewEncoder(w)
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for first := true; ; first = false {
		if !first {
			if evs, err = d.j.Events(session, after, 1000); err != nil {
				return
			}
		}
		for _, e := range evs {
			if enc.Encode(apiEvent(e)) != nil {
				return
			}
			after = e.Seq
		}
		if len(evs) > 0 {
			if rc.Flush() != nil {
				return
			}
			if len(evs) == 1000 {
				continue // more are kept
			}
		}
		if !follow {
			return
		}
		d.mu.Lock()
		stopping := d.stopping
		d.mu.Unlock()
		if stopping {
			return
		}
		select {
		case <-changed:
		case <-keepAlive.C:
			// A blank line: the client learns the stream is alive, and
			// the daemon learns a client that has gone.
			if _, err := w.Write([]byte("\n")); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

func (d *daemon) ack(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Seq uint64 `json:"seq"`
	}
	if err := decodeBody(w, r, 4096, &body); err != nil {
		refuse(w, http.StatusBadRequest, bgapi.ProblemBadRequest, "malformed ack", err.Error())
		return
	}
	if err := d.j.Ack(r.PathValue("session"), body.Seq); errors.Is(err, journal.ErrAckBeyond) {
		refuse(w, http.StatusBadRequest, bgapi.ProblemBadRequest, "cannot acknowledge", err.Error())
		return
	} else if err != nil {
		fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// release lets go of an attached session at once, for the client holding
// it (Ferry-Attach-Token), without waiting for its stream to be noticed
// closed.
func (d *daemon) release(w http.ResponseWriter, r *http.Request) {
	if !d.detach(r.PathValue("session"), r.Header.Get("Ferry-Attach-Token")) {
		refuse(w, http.StatusConflict, bgapi.ProblemConflict, "not attached with that token", "")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// closeSession ends a session: ?cancel=1 cancels its unfinished tasks now;
// without it they run to their end.
func (d *daemon) closeSession(w http.ResponseWriter, r *http.Request) {
	session := r.PathValue("session")
	if r.URL.Query().Get("cancel") == "1" {
		ts, err := d.j.Tasks(session)
		if err != nil {
			fail(w, err)
			return
		}
		for _, t := range ts {
			if !t.State.Terminal() {
				if _, err := d.control(t.ID, "cancel"); err != nil && !errors.Is(err, errConflict) {
					fail(w, err)
					return
				}
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
