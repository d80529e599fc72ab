package bgapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// ErrNoDaemon reports that no daemon answers on the socket.
var ErrNoDaemon = errors.New("ferry: no daemon is running (start one with `ferry daemon`)")

// Error is an error answer of the daemon.
type Error struct{ Problem Problem }

func (e *Error) Error() string {
	if e.Problem.Detail != "" {
		return "ferry daemon: " + e.Problem.Title + ": " + e.Problem.Detail
	}
	return "ferry daemon: " + e.Problem.Title
}

// Is matches the sentinels below by problem type.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrSessionInUse:
		return e.Problem.Type == ProblemSessionInUse
	case ErrNotFound:
		return e.Problem.Type == ProblemNotFound
	}
	return false
}

var (
	// ErrSessionInUse: another live process is attached to the session.
	ErrSessionInUse = errors.New("ferry: the background session is attached by another process")
	// ErrNotFound: no such task or session.
	ErrNotFound = errors.New("ferry: no such task")
)

// Client talks to the daemon over its unix socket. It talks only to a
// daemon of its own user: a socket another user's process serves is
// refused with ErrForeignDaemon before anything is sent.
type Client struct {
	Socket string
	hc     *http.Client
	uid    int // the user whose daemon this client talks to
}

// NewClient returns a client of the daemon at socket.
func NewClient(socket string) *Client {
	c := &Client{Socket: socket, uid: os.Geteuid()}
	tr := &http.Transport{DialContext: c.dial, MaxIdleConnsPerHost: 4}
	c.hc = &http.Client{Transport: tr}
	return c
}

// dial connects to the socket and makes sure our own user serves it.
func (c *Client) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return nil, err
	}
	uid, err := PeerUID(conn)
	switch {
	case errors.Is(err, errPeerUnknown):
		return conn, nil // the socket's mode keeps others out
	case err != nil:
		conn.Close()
		return nil, fmt.Errorf("ferry: %s: who serves it: %w", c.Socket, err)
	case uid != c.uid:
		conn.Close()
		return nil, &ForeignDaemonError{Socket: c.Socket, UID: uid, Own: c.uid}
	}
	return conn, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, rd)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// send makes one request to the daemon and returns its answer when it is a
// success; a failure to reach the daemon is ErrNoDaemon, an error answer a
// *Error.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://ferry"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Ferry-Client-Pid", strconv.Itoa(os.Getpid()))
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	if err := answerError(resp); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

func (c *Client) dialError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: %s: %v", ErrNoDaemon, c.Socket, op.Err)
	}
	return err
}

func answerError(resp *http.Response) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	var p Problem
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &p) != nil || p.Title == "" {
		p = Problem{Title: resp.Status, Status: resp.StatusCode, Detail: string(bytes.TrimSpace(b))}
	}
	return &Error{Problem: p}
}

// Health asks the daemon how it is; it fails with ErrNoDaemon when none runs.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	return &h, c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
}

// Create queues a task in session.
func (c *Client) Create(ctx context.Context, session string, nt NewTask) (*Task, error) {
	var t Task
	return &t, c.do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(session)+"/tasks", nt, &t)
}

// Tasks lists the tasks of session ("" for all).
func (c *Client) Tasks(ctx context.Context, session string) ([]Task, error) {
	var ts []Task
	p := "/v1/tasks"
	if session != "" {
		p += "?session=" + url.QueryEscape(session)
	}
	return ts, c.do(ctx, http.MethodGet, p, nil, &ts)
}

// Task returns one task.
func (c *Client) Task(ctx context.Context, id string) (*Task, error) {
	var t Task
	return &t, c.do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id), nil, &t)
}

// Pause, Resume and Cancel act on a task and return it as it is then.
func (c *Client) Pause(ctx context.Context, id string) (*Task, error) { return c.act(ctx, id, "pause") }

func (c *Client) Resume(ctx context.Context, id string) (*Task, error) {
	return c.act(ctx, id, "resume")
}

func (c *Client) Cancel(ctx context.Context, id string) (*Task, error) {
	return c.act(ctx, id, "cancel")
}

func (c *Client) act(ctx context.Context, id, what string) (*Task, error) {
	var t Task
	return &t, c.do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/"+what, nil, &t)
}

// Wait blocks until the task reaches a terminal state, or ctx ends.
func (c *Client) Wait(ctx context.Context, id string) (*Task, error) {
	for {
		var t Task
		err := c.do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id)+"/wait?timeout=30s", nil, &t)
		if err != nil {
			return nil, err
		}
		if t.State.Terminal() {
			return &t, nil
		}
	}
}

// EventsOptions says how Events reads a session's log.
type EventsOptions struct {
	After uint64 // the last event already had; 0 reads from the oldest kept
	// Follow keeps the stream open for events to come.
	Follow bool
	// Attach holds the session for this client while the stream is open:
	// another attach fails with ErrSessionInUse.
	Attach bool
	// OnOpen, if set, is called once the daemon has accepted the stream
	// with the attachment's token (with Attach: Release lets go with it).
	OnOpen func(token string)
}

// Events reads the session's events after o.After and hands each to fn,
// until the log is exhausted (or, with Follow, until ctx ends or fn fails).
func (c *Client) Events(ctx context.Context, session string, o EventsOptions, fn func(Event) error) error {
	q := url.Values{"after": {strconv.FormatUint(o.After, 10)}}
	if o.Follow {
		q.Set("follow", "1")
	}
	if o.Attach {
		q.Set("attach", "1")
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/sessions/"+url.PathEscape(session)+"/events?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if o.OnOpen != nil {
		o.OnOpen(resp.Header.Get("Ferry-Attach-Token"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue // a keep-alive
		}
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("ferry daemon: bad event line %q: %w", line, err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}

// Ack tells the daemon the session has every event up to seq; they are
// forgotten.
func (c *Client) Ack(ctx context.Context, session string, seq uint64) error {
	return c.do(ctx, http.MethodPost, "/v1/sessions/"+url.PathEscape(session)+"/ack", map[string]uint64{"seq": seq}, nil)
}

// Release lets go of an attached session at once (the token is OnOpen's).
func (c *Client) Release(ctx context.Context, session, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, "http://ferry/v1/sessions/"+url.PathEscape(session)+"/attach", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Ferry-Attach-Token", token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	return answerError(resp)
}

// CloseSession ends a session: with cancel its unfinished tasks are
// cancelled at once; without, they run to their end.
func (c *Client) CloseSession(ctx context.Context, session string, cancel bool) error {
	p := "/v1/sessions/" + url.PathEscape(session)
	if cancel {
		p += "?cancel=1"
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil)
}

// WaitReady polls until a daemon answers on the socket, for at most d.
func (c *Client) WaitReady(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		_, err := c.Health(ctx)
		if err == nil || !errors.Is(err, ErrNoDaemon) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
