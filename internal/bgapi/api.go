// Package bgapi is the wire protocol of ferry's background daemon: the
// JSON shapes of its HTTP API over a unix socket (docs/API.md), and a client
// for it. The daemon, the library's background sessions and the CLI all
// speak through it.
package bgapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Kinds of task.
const (
	KindGet = "get"
	KindPut = "put"
	KindHLS = "hls"
)

// GetRequest is a download. Paths are absolute: the daemon's working
// directory is not the caller's.
type GetRequest struct {
	URL         string      `json:"url"`
	Path        string      `json:"path"`
	Connections int         `json:"connections,omitempty"`
	Checksum    string      `json:"checksum,omitempty"` // "sha-256=HEX"
	CreateDirs  bool        `json:"create_dirs,omitempty"`
	Header      http.Header `json:"header,omitempty"`
	// SHA256 and KeepState are the library's: the daemon always hashes,
	// and keeps the state after success only when KeepState asks it to.
	SHA256    bool  `json:"sha256,omitempty"`
	KeepState bool  `json:"keep_state,omitempty"`
	RateLimit int64 `json:"rate_limit,omitempty"` // bytes per second
}

// PutRequest is an upload of the file at Path.
type PutRequest struct {
	URL         string            `json:"url"`
	Path        string            `json:"path"`
	Protocol    string            `json:"protocol,omitempty"` // auto, tus, ietf, multipart, put, post
	Connections int               `json:"connections,omitempty"`
	ChunkSize   int64             `json:"chunk_size,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`   // tus Upload-Metadata
	FieldName   string            `json:"field_name,omitempty"` // of a multipart form
	Idempotent  bool              `json:"idempotent,omitempty"` // a plain post may be sent again
	Form        []FormPart        `json:"form,omitempty"`       // parts of a multipart form before Path's
	Header      http.Header       `json:"header,omitempty"`
	SHA256      bool              `json:"sha256,omitempty"`
	KeepState   bool              `json:"keep_state,omitempty"`
	RateLimit   int64             `json:"rate_limit,omitempty"` // bytes per second
}

// FormPart is a text field (Name, Value) or a file (Name, Path) of a
// multipart upload.
type FormPart struct {
	Name        string `json:"name"`
	Value       string `json:"value,omitempty"`
	Path        string `json:"path,omitempty"`
	FileName    string `json:"file_name,omitempty"`
	ContentType string `json:"content_type,omitempty"`
}

// HLSRequest is an HLS download into Dir.
type HLSRequest struct {
	URL          string      `json:"url"`
	Dir          string      `json:"dir"`
	Variant      string      `json:"variant,omitempty"`
	MaxBandwidth int64       `json:"max_bandwidth,omitempty"`
	Connections  int         `json:"connections,omitempty"`
	LiveDuration Duration    `json:"live_duration,omitempty"`
	AllowHoles   bool        `json:"allow_holes,omitempty"`
	Concat       string      `json:"concat,omitempty"`
	MaxSegments  int         `json:"max_segments,omitempty"`
	Header       http.Header `json:"header,omitempty"`
	RateLimit    int64       `json:"rate_limit,omitempty"` // bytes per second
}

// NewTask asks the daemon for a task: exactly one of Get, Put and HLS.
type NewTask struct {
	// Priority orders queued tasks: higher first, then oldest first.
	Priority int `json:"priority,omitempty"`
	// NotBefore holds the task back until then.
	NotBefore time.Time   `json:"not_before,omitzero"`
	Get       *GetRequest `json:"get,omitempty"`
	Put       *PutRequest `json:"put,omitempty"`
	HLS       *HLSRequest `json:"hls,omitempty"`
}

// Kind is the task's kind, "" when not exactly one request is set.
func (n *NewTask) Kind() string {
	kind, set := "", 0
	if n.Get != nil {
		kind, set = KindGet, set+1
	}
	if n.Put != nil {
		kind, set = KindPut, set+1
	}
	if n.HLS != nil {
		kind, set = KindHLS, set+1
	}
	if set != 1 {
		return ""
	}
	return kind
}

// Spec is the JSON of the task's one request: what the daemon keeps as
// the task's Request.
func (n *NewTask) Spec() (json.RawMessage, error) {
	var v any
	switch n.Kind() {
	case KindGet:
		v = n.Get
	case KindPut:
		v = n.Put
	case KindHLS:
		v = n.HLS
	default:
		return nil, errors.New("exactly one of get, put and hls is needed")
	}
	return json.Marshal(v)
}

// State is a task's state, as the daemon keeps and reports it.
type State string

// Task states.
const (
	Queued   State = "queued"  // waiting for its turn (or its NotBefore time)
	Running  State = "running" // being transferred
	Paused   State = "paused"  // stopped on request, resumable
	Waiting  State = "waiting" // for connectivity: tried again at Task.NextTry
	Done     State = "done"
	Failed   State = "failed"
	Canceled State = "canceled"
)

// Terminal reports whether a task in state s will not change again.
func (s State) Terminal() bool { return s == Done || s == Failed || s == Canceled }

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	switch s {
	case Queued, Running, Paused, Waiting, Done, Failed, Canceled:
		return true
	}
	return false
}

// Task is what the daemon says about a task.
type Task struct {
	ID        string          `json:"id"`
	Session   string          `json:"session"`
	Kind      string          `json:"kind"`
	State     State           `json:"state"`
	Priority  int             `json:"priority,omitempty"`
	NotBefore time.Time       `json:"not_before,omitzero"`
	NextTry   time.Time       `json:"next_try,omitzero"`
	Tries     int             `json:"tries,omitempty"`
	Created   time.Time       `json:"created"`
	Updated   time.Time       `json:"updated"`
	Request   json.RawMessage `json:"request"`
	Result    *Result         `json:"result,omitempty"`
	Error     string          `json:"error,omitempty"`
	Failure   *Failure        `json:"failure,omitempty"`
	// Progress is live, for a running task.
	Progress *Progress `json:"progress,omitempty"`
}

// Progress is a running task's advance.
type Progress struct {
	Done     int64   `json:"done"`
	Expected int64   `json:"expected"` // -1 while unknown
	Speed    float64 `json:"speed"`    // bytes per second, recent
}

// Result is what a finished task reports: the library's Result, with
// Downloaded and Uploaded counting every run the task had, in every
// daemon that ran it.
type Result struct {
	URL         string   `json:"url"`
	Path        string   `json:"path,omitempty"`
	Location    string   `json:"location,omitempty"`
	Size        int64    `json:"size"`
	ResumedFrom int64    `json:"resumed_from,omitempty"`
	Downloaded  int64    `json:"downloaded,omitempty"`
	Uploaded    int64    `json:"uploaded,omitempty"`
	SHA256      string   `json:"sha256,omitempty"`
	Proto       string   `json:"proto,omitempty"`
	Protocol    string   `json:"protocol,omitempty"` // of an upload
	Response    []byte   `json:"response,omitempty"` // a multipart upload's response body
	Verified    []string `json:"verified,omitempty"`
	Segments    int      `json:"segments,omitempty"`
	// Metrics are the last run's (the library's TaskMetrics).
	Metrics json.RawMessage `json:"metrics,omitempty"`
}

// Event types. Every change of a task's state is one event, stored before
// it is announced, kept until the session acknowledges it.
const (
	EventCreated  = "created"
	EventStarted  = "started"
	EventPaused   = "paused"
	EventResumed  = "resumed"
	EventWaiting  = "waiting"
	EventDone     = "done"
	EventFailed   = "failed"
	EventCanceled = "canceled"
)

// Event is one entry of a session's event log.
type Event struct {
	Seq     uint64    `json:"seq"` // per session, from 1, never reused
	Session string    `json:"session"`
	Task    string    `json:"task"`
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	// Result of a "done" event.
	Result *Result `json:"result,omitempty"`
	// Error of a "failed" or "waiting" event, and its parts when the
	// library said them.
	Error   string   `json:"error,omitempty"`
	Failure *Failure `json:"failure,omitempty"`
}

// Failure is a failed transfer step as the library reports it (a
// ferry.Error): the operation, the URL and the cause, with the status of
// a response that ended it.
type Failure struct {
	Op     string `json:"op"`
	URL    string `json:"url"`
	Cause  string `json:"cause"`
	Status int    `json:"status,omitempty"`
	// StatusLine is the response's status, e.g. "404 Not Found".
	StatusLine string `json:"status_line,omitempty"`
}

// Health is the daemon's GET /v1/health.
type Health struct {
	PID      int    `json:"pid"`
	Version  string `json:"version"`
	StateDir string `json:"state_dir"`
	Tasks    int    `json:"tasks"`
	Running  int    `json:"running"`
}

// Problem is an error answer (RFC 9457 problem details).
type Problem struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Problem types the clients act on.
const (
	ProblemSessionInUse = "https://ferry.dev/problems/session-in-use"
	ProblemNotFound     = "https://ferry.dev/problems/not-found"
	ProblemBadRequest   = "https://ferry.dev/problems/bad-request"
	ProblemConflict     = "https://ferry.dev/problems/conflict"
)

// Duration is a time.Duration that reads and writes as "90s", "10m".
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// DefaultStateDir is $XDG_STATE_HOME/ferry, or ~/.local/state/ferry (for
// a user without a home, ferry-state-UID in the temporary directory, so
// that users do not share one).
func DefaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "ferry")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "ferry-state-"+strconv.Itoa(os.Geteuid()))
	}
	return filepath.Join(home, ".local", "state", "ferry")
}

// DefaultSocket is the daemon's socket for stateDir: daemon.sock inside it.
func DefaultSocket(stateDir string) string { return filepath.Join(stateDir, "daemon.sock") }
