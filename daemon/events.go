package daemon

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/internal/journal"
)

// watcher returns a channel that is signalled when session's log grows,
// and a function to stop watching.
func (d *daemon) watcher(session string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	d.mu.Lock()
	d.watch[session] = append(d.watch[session], ch)
	d.mu.Unlock()
	return ch, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		ws := d.watch[session]
		for i, w := range ws {
			if w == ch {
				d.watch[session] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(d.watch[session]) == 0 {
			delete(d.watch, session)
		}
	}
}

// notify wakes the session's event streams.
func (d *daemon) notify(session string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ch := range d.watch[session] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (d *daemon) notifyAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ws := range d.watch {
		for _, ch := range ws {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// holder is the client attached to a session.
type holder struct {
	pid   int
	token string
}

// attach holds session for a client; false (with the holder) when another
// holds it. The token identifies this attachment when it is released.
func (d *daemon) attach(session string, pid int) (holder, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, held := d.attached[session]; held {
		return h, false
	}
	d.tokens++
	h := holder{pid: pid, token: fmt.Sprintf("%d-%d", os.Getpid(), d.tokens)}
	d.attached[session] = h
	return h, true
}

// detach releases the session if token still holds it: a stream that ends
// after its client let go and another attached must not free the newcomer's
// hold.
func (d *daemon) detach(session, token string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.attached[session]; ok && h.token == token {
		delete(d.attached, session)
		return true
	}
	return false
}

// apiEvent is the wire form of a journal event.
func apiEvent(e journal.Event) bgapi.Event {
	out := bgapi.Event{Seq: e.Seq, Session: e.Session, Task: e.Task, Type: e.Type, Time: e.Time}
	if len(e.Data) > 0 {
		var data eventData
		if json.Unmarshal(e.Data, &data) == nil {
			out.Result, out.Error, out.Failure = data.Result, data.Error, data.Failure
		}
	}
	return out
}

// apiTask is the wire form of a task, with its live progress if it runs.
func (d *daemon) apiTask(t *journal.Task) bgapi.Task {
	out := bgapi.Task{ID: t.ID, Session: t.Session, Kind: t.Kind, State: t.State, Priority: t.Priority,
		NotBefore: t.NotBefore, NextTry: t.NextTry, Tries: t.Tries, Created: t.Created, Updated: t.Updated,
		Request: t.Request, Error: t.Error}
	if len(t.Result) > 0 {
		var r bgapi.Result
		if json.Unmarshal(t.Result, &r) == nil {
			out.Result = &r
		}
	}
	if len(t.Failure) > 0 {
		var f bgapi.Failure
		if json.Unmarshal(t.Failure, &f) == nil {
			out.Failure = &f
		}
	}
	if ft := d.liveTask(t.ID); ft != nil {
		p := ft.Progress()
		out.Progress = &bgapi.Progress{Done: p.Done, Expected: p.Expected, Speed: p.Speed}
	}
	return out
}
