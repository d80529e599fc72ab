// Package upload is ferry's upload engine: it sends a local file to a tus
// 1.0 server, an IETF resumable-upload server, or a multipart/form-data
// endpoint. Resumable uploads remember the upload URL and the offset the
// server acknowledged, so a later run continues where the server stopped;
// with tus concatenation the file goes up in segments over several
// connections, the first segment a fixed-size speed probe and the later ones
// sized to a few seconds of transfer at the measured speed.
package upload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ferryhq/ferry/internal/retry"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/statefile"
	"github.com/ferryhq/ferry/internal/transfer"
)

// Protocol names how a file is uploaded.
type Protocol string

const (
	Auto      Protocol = "auto" // ask the server with OPTIONS
	Tus       Protocol = "tus"
	IETF      Protocol = "ietf"
	Multipart Protocol = "multipart"
)

// Job describes one upload: the task's Env, whose URL is the creation
// endpoint (tus, IETF) or the form's URL (multipart), and what is
// particular to an upload. URL, Path and Saved are required.
type Job struct {
	*send.Env
	Path     string // the local file
	Protocol Protocol
	// Metadata is sent as tus Upload-Metadata (filename defaults to the
	// file's base name).
	Metadata map[string]string
	// Connections > 1 uploads segments in parallel through tus
	// concatenation, when the server offers it.
	Connections int
	// ChunkSize fixes the size of each append (or segment); 0 sizes them
	// from the measured speed.
	ChunkSize int64
	// FieldName is the multipart form field of the file ("file").
	FieldName string
	// Hash computes the SHA-256 of the file (Result.SHA256).
	Hash  bool
	Saved statefile.Store[State] // what a later run continues from
	// KeepState leaves the saved state in place after success: the same
	// job run again finds the upload complete on the server and finishes
	// without sending it again. Whoever records the result removes it.
	KeepState bool
}

// Result describes a finished upload.
type Result struct {
	URL         string
	Path        string
	Location    string // the upload's URL on the server (empty for multipart)
	Protocol    Protocol
	Size        int64
	ResumedFrom int64 // bytes the server already had when this run started
	Uploaded    int64 // bytes sent by this run
	SHA256      string
	Proto       string
	Response    []byte // the final response body (multipart answers), at most 64 KiB
}

// stateVersion is bumped when State changes incompatibly.
const stateVersion = 1

// State is what an upload remembers between runs.
type State struct {
	Version  int      `json:"version"`
	URL      string   `json:"url"`
	Path     string   `json:"path"`
	Size     int64    `json:"size"`
	ModTime  int64    `json:"mtime"` // unix nanos: a changed file starts over
	Protocol Protocol `json:"protocol"`
	// Location and Offset describe a single upload: its URL and the bytes
	// the server acknowledged.
	Location string `json:"location,omitempty"`
	Offset   int64  `json:"offset"`
	// Segments, Next and Final describe a parallel upload: the partial
	// uploads made so far, where the next segment starts, and the final
	// upload once the partials were concatenated.
	Segments []Segment `json:"segments,omitempty"`
	Next     int64     `json:"next,omitempty"`
	Final    string    `json:"final,omitempty"`
}

// Segment is one partial upload of a parallel upload: bytes [Start, End) of
// the file, of which the server acknowledged Offset.
type Segment struct {
	Start    int64  `json:"start"`
	End      int64  `json:"end"`
	Location string `json:"location,omitempty"`
	Offset   int64  `json:"offset"`
}

func (s Segment) done() bool { return s.Location != "" && s.Offset == s.End-s.Start }

// StatePath is where the CLI keeps the state of uploading path to url, in
// dir: one file per (file, endpoint), so the same command run again finds it.
func StatePath(dir, path, endpoint string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return filepath.Join(dir, keyOf(abs+"\n"+endpoint)+".json")
}

// ErrFileChanged reports that the local file changed during the upload.
var ErrFileChanged = errors.New("ferry: the file changed while it was being uploaded")

// Run uploads j to completion or until ctx is done; the saved state keeps what
// a later Run needs to continue.
func Run(ctx context.Context, j *Job) (*Result, error) {
	if j.Env == nil {
		j.Env = &send.Env{}
	}
	j.Init()
	r := &run{j: j, resumedFrom: -1, retrier: j.Retrier()}
	err := r.loop(ctx)
	if r.file != nil {
		r.file.Close()
	}
	if err != nil {
		return nil, j.Failed(ctx, r.op, err)
	}
	return &r.res, nil
}

type stateFunc = transfer.Step

type run struct {
	j    *Job
	op   string
	file *os.File
	st   State
	caps caps // what the server offers

	resumedFrom int64
	proto       atomic.Pointer[string] // of the last response; workers race to set it
	retrier     retry.Retrier
	gone        int // uploads the server lost, started anew

	// mostAcked is the highest offset the server acknowledged in this
	// run, per upload (a segment's index; -1 for a single upload). Only
	// passing it is progress, so a server that acknowledges and then
	// forgets cannot hold the upload in a loop.
	ackedMu   sync.Mutex
	mostAcked map[int]int64

	digestOnce sync.Once
	digest     []byte
	digestErr  error
	res        Result
}

func (r *run) loop(ctx context.Context) error { return transfer.RunSteps(ctx, r.open) }

// open reads the local file and what an earlier run left.
func (r *run) open(ctx context.Context) (stateFunc, error) {
	r.op = "open"
	f, err := os.Open(r.j.Path)
	if err != nil {
		return nil, err
	}
	r.file = f
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", r.j.Path)
	}
	fresh := State{Version: stateVersion, URL: r.j.URL, Path: r.j.Path, Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
	st, err := r.j.Saved.Load()
	if err != nil {
		return nil, err
	}
	switch {
	case st == nil, st.Version != stateVersion, st.URL != r.j.URL:
		r.st = fresh
	case st.Size != fresh.Size || st.ModTime != fresh.ModTime:
		// The file is not the one the server holds part of: start over.
		r.st = fresh
		r.j.Emit(transfer.RestartEvent{Discarded: st.Offset, Reason: "the local file changed since the last run"})
	default:
		r.st = *st
	}
	r.j.Meter.Reset(0, r.st.Size)
	return r.discover, nil
}

// retrying runs f until it succeeds, the policy gives up or ctx ends; an
// attempt that moved the upload forward resets the failure count.
func (r *run) retrying(ctx context.Context, f func(context.Context) (progressed bool, err error)) error {
	return r.retrier.Do(ctx, f)
}

func (r *run) save() error { return r.j.Saved.Save(&r.st) }

// passed records that the server acknowledged off of upload part (see
// mostAcked) and reports whether that is further than it ever had.
func (r *run) passed(part int, off int64) bool {
	r.ackedMu.Lock()
	defer r.ackedMu.Unlock()
	if r.mostAcked == nil {
		r.mostAcked = map[int]int64{}
	}
	if most, ok := r.mostAcked[part]; ok && off <= most {
		return false
	}
	r.mostAcked[part] = off
	return true
}

// created forgets what the server acknowledged of an upload part it lost:
// the upload made anew starts from 0. (Uploads lost over and over are
// bounded on their own.)
func (r *run) created(part int) {
	r.ackedMu.Lock()
	defer r.ackedMu.Unlock()
	delete(r.mostAcked, part)
}
