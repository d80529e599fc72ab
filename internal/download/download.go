// Package download is ferry's download engine: probe the resource, pick up
// what an earlier run left in the .part file, fetch the rest with Range and
// If-Range, verify, and commit with fsync and an atomic rename.
//
// The engine is a state machine in the style of grab: each step is a
// stateFunc that returns the next one, and one loop runs them, so every path,
// including errors and cancellation, ends in the same place.
package download

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/retry"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/statefile"
	"github.com/ferryhq/ferry/internal/transfer"
)

// Checksum is a digest the result must have.
type Checksum struct {
	Algorithm string // "sha-256" or "sha-512"
	Hex       string // lowercase hex
}

// Job describes one download: the task's Env (its URL, client and limits;
// Slots bound the requests in flight to one host across all downloads that
// share it: connections over HTTP/1.1, streams over HTTP/2) and what is
// particular to a download. URL, Path and Saved are required.
type Job struct {
	*send.Env
	Path  string                 // final file; data goes to Path+".part" until commit
	Saved statefile.Store[State] // what a later run continues from

	// Connections is how many connections fetch the file: 1 for a single
	// stream, N > 1 for N ranged requests in parallel, and 0 for the
	// adaptive default, which starts with two and adds one while the total
	// rate still rises, up to MaxConnections.
	Connections    int
	MaxConnections int
	// Continue adopts an existing file at Path that ferry did not start
	// (no control file) as the first bytes, like wget -c.
	Continue bool
	// Hash computes the SHA-256 of the result (Result.SHA256).
	Hash bool
	// KeepState leaves the saved state in place after success, describing the
	// committed file: the same job run again returns it without fetching
	// while it is unchanged. Whoever records the result removes it.
	KeepState bool
	Checksum  *Checksum
	// Stream, if set, receives the bytes in order as they arrive instead
	// of a .part file: a device, a FIFO, stdout. There is one connection,
	// no saved state and no resume across runs; a dropped connection continues
	// with a range under a strong validator, and what would need the
	// bytes written to be taken back fails with ErrStreamRestart. Path is
	// then only the destination's name.
	Stream io.Writer
}

// PartPath is where a download to path keeps its bytes until commit.
func PartPath(path string) string { return path + ".part" }

// ControlPath is where the CLI keeps a download's state.
func ControlPath(path string) string { return path + ".ferry" }

// Result describes a finished download.
type Result struct {
	URL         string
	Path        string
	Size        int64
	ResumedFrom int64 // bytes already in place when data started to flow
	Downloaded  int64 // bytes moved over the network by this run
	SHA256      string
	Proto       string
	Validator   httprange.Validator
	// Verified lists what the result was checked against: "size",
	// "checksum sha-256", "repr-digest sha-256", ...
	Verified []string
}

// ErrBusy reports that another download is writing to the same file.
var ErrBusy = errors.New("ferry: another download is writing to this file")

// ErrStreamRestart reports a download to a stream destination that would
// have to start over (the resource changed, or the server cannot continue
// a range): the bytes written cannot be taken back.
var ErrStreamRestart = errors.New("ferry: a stream cannot start over: what was written cannot be taken back")

// Run downloads j to completion, or until ctx is done; the context's cause
// is returned then, and the .part and saved state are left for a later Run.
func Run(ctx context.Context, j *Job) (*Result, error) {
	if j.Env == nil {
		j.Env = &send.Env{}
	}
	j.Init()
	r := &run{j: j, buf: make([]byte, 256<<10), resumedFrom: -1}
	r.retrier = j.Retrier()
	err := r.loop(ctx)
	if r.part != nil {
		r.close(err, ctx.Err() != nil)
	}
	if err != nil {
		return nil, j.Failed(ctx, r.op, err)
	}
	return &r.res, nil
}

// close ends a run that did not commit: a run that kept nothing leaves
// nothing; otherwise the saved state records how far it got.
func (r *run) close(err error, interrupted bool) {
	defer r.part.Close()
	if err == nil {
		return
	}
	if !interrupted && r.offset == 0 && !r.st.Blind {
		// Failed before keeping a byte (404, refused, ...): leave nothing.
		os.Remove(r.part.Name())
		r.j.Saved.Remove()
		return
	}
	if r.opened {
		r.st.Offset = r.offset
		r.j.Saved.Save(&r.st)
	}
}

type stateFunc = transfer.Step

type run struct {
	j      *Job
	st     State
	part   *os.File
	opened bool // the saved state describes this .part file
	buf    []byte
	op     string

	offset      int64 // bytes in place at the start of the .part file
	high        int64 // the most bytes ever in place: progress is passing it
	resumedFrom int64 // -1 until data starts to flow (see resumed)
	probe       probeResult
	digest      reprDigest // the server's digest to verify at commit
	flushed     int64      // bytes handed to writeback so far
	sums        digests

	retrier   retry.Retrier
	restarts  int // whole-file restarts of a segmented fetch
	badRanges int
	fullOnly  bool // ranges from this server are not trusted: fetch whole
	res       Result
}

func (r *run) loop(ctx context.Context) error { return transfer.RunSteps(ctx, r.open) }

// open finds what an earlier run left: the saved state's state and the .part
// file. Nothing under the final name but a regular file is ever replaced,
// which is checked here, before the first request, and again at the commit.
func (r *run) open(ctx context.Context) (stateFunc, error) {
	r.op = "open"
	if r.j.Stream != nil {
		r.st = State{Version: stateVersion, URL: r.j.URL, Size: -1}
		r.sums = newDigests(r.j)
		return r.probeState, nil
	}
	if err := atomicfile.CheckReplace(r.j.Path); err != nil {
		return nil, err
	}
	st, err := r.j.Saved.Load()
	if err != nil {
		return nil, err
	}
	if st != nil && (st.URL != r.j.URL || st.Version != stateVersion) {
		st = nil // state of another download or format: start over
	}
	if st != nil && st.Done != nil {
		if r.finished(st) {
			return nil, nil
		}
		st = nil // the committed file is gone or changed: fetch it again
	}
	partPath := PartPath(r.j.Path)
	if st == nil && r.j.Continue {
		if st, err = adopt(r.j, partPath); err != nil {
			return nil, err
		}
	}
	r.part, err = atomicfile.Open(partPath, os.O_RDWR|os.O_CREATE, atomicfile.Public)
	if err != nil {
		return nil, err
	}
	if err := lock(r.part); err != nil {
		r.part.Close()
		r.part = nil
		return nil, err
	}
	if c, ok := r.j.Saved.(interface{ RemoveTemps() }); ok {
		c.RemoveTemps() // the lock makes this run the saved state's only writer
	}
	fi, err := r.part.Stat()
	if err != nil {
		return nil, err
	}
	if st != nil {
		r.st = *st
		r.offset = fi.Size()
	} else {
		r.st = State{Version: stateVersion, URL: r.j.URL, Size: -1}
		if err := r.part.Truncate(0); err != nil {
			return nil, err
		}
	}
	r.opened = true
	r.high = r.offset
	r.sums = newDigests(r.j)
	return r.probeState, nil
}

// adopt makes a partial file that ferry did not start (at path, or already
// moved to the .part file by an interrupted adoption) the first bytes of the
// download, and records that in the saved state at once so that no later run
// mistakes it for debris and truncates it.
func adopt(j *Job, partPath string) (*State, error) {
	st := &State{Version: stateVersion, URL: j.URL, Size: -1, Blind: true}
	if fi, err := os.Lstat(partPath); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
		return st, j.Saved.Save(st)
	}
	// Only a file the .part file could be is moved there: a regular file
	// of this user with one link (open already refused anything else under
	// the final name).
	f, err := atomicfile.Open(j.Path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing to adopt: a fresh download
	}
	if err != nil {
		return nil, err
	}
	f.Close()
	if err := j.Saved.Save(st); err != nil {
		return nil, err
	}
	return st, atomicfile.Rename(j.Path, partPath)
}

// probeState learns the resource's size and validators and decides whether
// the bytes in the .part file still belong to it.
func (r *run) probeState(ctx context.Context) (stateFunc, error) {
	r.op = "probe"
	err := r.retrying(ctx, func(ctx context.Context) (bool, error) {
		p, err := r.doProbe(ctx)
		if err == nil {
			r.probe = p
		}
		return false, err
	})
	if err != nil {
		return nil, err
	}
	p := r.probe
	if r.st.Missing != nil && (p.size != r.st.Size || !p.ranges) {
		// A segmented layout needs the same size and ranges to go on with.
		if err := r.restart("the resource changed since the last run"); err != nil {
			return nil, err
		}
	}
	if r.offset > 0 {
		var reason string
		switch {
		case p.size >= 0 && r.offset > p.size:
			reason = "the local file is larger than the resource"
		case r.st.Blind:
			// The user vouched for the bytes (-c); nothing else to check.
		case !p.validator.Same(r.st.Validator) || (p.size >= 0 && r.st.Size >= 0 && p.size != r.st.Size):
			reason = "the resource changed since the last run"
		case p.validator.IfRange() == "":
			reason = "the server sends no strong validator to resume against"
		}
		if reason != "" {
			if err := r.restart(reason); err != nil {
				return nil, err
			}
		}
	}
	// From here on every byte is fetched under the probed validator.
	r.st.Validator = p.validator
	r.digest = p.digest
	if r.digest.alg != "" {
		r.sums.want(r.digest.alg)
	}
	if p.size >= 0 || r.st.Size < 0 {
		r.st.Size = p.size
	}
	r.st.Offset = r.offset
	if err := r.j.Saved.Save(&r.st); err != nil {
		return nil, err
	}
	r.j.Meter.Reset(r.offset, r.st.Size)
	r.flushed = r.offset
	// Only a non-empty file is taken as complete on the probe's word: a HEAD
	// that wrongly says 0 must not produce an empty result.
	if r.segmentable() {
		return r.fetchSegmented, nil
	}
	if r.st.Size > 0 && r.offset == r.st.Size {
		r.resumedFrom = r.offset
		return r.commit, nil
	}
	return r.fetch, nil
}

// restart discards the bytes in place and starts from zero; a stream can
// only when it has written nothing.
func (r *run) restart(reason string) error {
	discarded := r.offset
	if r.j.Stream != nil {
		if discarded > 0 {
			return fmt.Errorf("%w (%s)", ErrStreamRestart, reason)
		}
	} else if err := r.part.Truncate(0); err != nil {
		return err
	}
	r.offset = 0
	r.flushed = 0
	r.st.Offset = 0
	r.st.Blind = false
	r.st.Missing = nil
	r.sums.reset()
	r.j.Meter.Reset(0, r.st.Size)
	r.j.Emit(transfer.RestartEvent{Discarded: discarded, Reason: reason})
	return nil
}

// retrying runs f until it succeeds, the policy gives up, or ctx ends. f
// reports whether it made progress, which resets the failure count; the
// count carries over from one step of the download to the next.
func (r *run) retrying(ctx context.Context, f func(context.Context) (bool, error)) error {
	return r.retrier.Do(ctx, f)
}

// fetch requests the bytes after offset until the file is complete. An
// attempt counts as progress only when it takes the file past the most bytes
// ever held, so a server that makes every attempt start over cannot keep the
// retry policy from running out.
func (r *run) fetch(ctx context.Context) (stateFunc, error) {
	r.op = "download"
	complete := false
	err := r.retrying(ctx, func(ctx context.Context) (bool, error) {
		var err error
		complete, err = r.fetchOnce(ctx)
		progressed := r.offset > r.high
		r.high = max(r.high, r.offset)
		return progressed, err
	})
	if err != nil {
		return nil, err
	}
	if !complete {
		return r.fetch, nil
	}
	return r.commit, nil
}

// finished takes a download an earlier run committed (KeepState) as this
// run's result, if the file is still as it was put in place.
func (r *run) finished(st *State) bool {
	fi, err := os.Lstat(r.j.Path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != st.Done.Size || fi.ModTime().UnixNano() != st.Done.ModTime {
		return false
	}
	r.res = Result{URL: r.j.URL, Path: r.j.Path, Size: st.Done.Size, ResumedFrom: st.Done.Size,
		SHA256: st.Done.SHA256, Validator: st.Validator, Verified: st.Done.Verified}
	r.j.Meter.Reset(st.Done.Size, st.Done.Size)
	return true
}

// resumed records, once, that data starts to flow with off bytes already
// in place, and tells of a resume from them.
func (r *run) resumed(off int64) {
	if r.resumedFrom >= 0 {
		return
	}
	r.resumedFrom = off
	if off > 0 {
		r.j.Emit(transfer.ResumeEvent{Offset: off, Expected: r.st.Size})
	}
}
