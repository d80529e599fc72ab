package ferry

import (
	"context"
	"fmt"
	"net/http"

	"github.com/ferryhq/ferry/internal/stream"
)

// StreamRequest describes a live streamed upload: a body written while it is
// produced (a recording while it is recorded), sent in one streamed request,
// with the server's replies arriving while it is sent.
type StreamRequest struct {
	// URL receives the stream, e.g. a ferry server's /stream/<name>.
	URL string
	// ContentType of the stream, e.g. "audio/wav".
	ContentType string
	Header      http.Header
	// Resumable sends the stream as an IETF resumable upload of unknown
	// length, so it survives dropped connections: bytes the server has
	// not confirmed are kept (in memory up to Buffer, then in a temporary
	// file) and sent again from the server's offset. Config.ResumableStreams
	// sets it for every stream.
	Resumable bool
	// Buffer bounds the bytes held in memory; 0 means 8 MiB. A stream
	// that is not resumable blocks Write while its buffer is full.
	Buffer int64
	// OnReply, if set, receives each reply of the server in order, once,
	// on the task's goroutine: a slow OnReply slows the replies, never the
	// upload. Without it, replies arrive as ReplyEvents on Task.Events
	// (which drops the oldest events when more than 1024 wait unread).
	OnReply func(ReplyEvent)
	// RateLimit caps this task's bytes per second (0: no cap of its own),
	// within the session's Config.RateLimit.
	RateLimit int64
}

// StreamTask is a running live stream: write the body to it, Close it at
// the end, then Wait for the result. It is a Task: Suspend parks a
// resumable stream (writes keep being buffered) until Resume; Cancel ends
// it.
type StreamTask struct {
	*Task
	st *stream.Stream
}

// Write adds p to the stream.
func (t *StreamTask) Write(p []byte) (int, error) { return t.st.Write(p) }

// Close ends the stream's body; the task completes once the server has it.
func (t *StreamTask) Close() error { return t.st.Close() }

// Stream starts a live streamed upload.
func (s *Session) Stream(ctx context.Context, req StreamRequest) (*StreamTask, error) {
	if err := checkURL(req.URL); err != nil {
		return nil, err
	}
	if err := checkRateLimit(req.RateLimit); err != nil {
		return nil, err
	}
	if req.Buffer < 0 {
		return nil, fmt.Errorf("%w: negative Buffer", ErrInvalidRequest)
	}
	w := &streamWork{}
	j := &stream.Job{
		Env:         s.env(nil, req.URL, req.Header, req.RateLimit),
		ContentType: req.ContentType,
		Resumable:   req.Resumable || s.cfg.ResumableStreams,
		Memory:      req.Buffer,
	}
	w.job = j
	w.onReply = req.OnReply
	t, err := s.newTask(ctx, w)
	if err != nil {
		return nil, err
	}
	j.Meter, j.Emit = t.meter, t.engineEmit
	j.OnReply = func(r stream.Reply) {
		ev := ReplyEvent{Seq: r.Seq, Type: r.Type, Line: r.Line}
		if w.onReply != nil {
			w.onReply(ev)
			return
		}
		t.emit(ev)
	}
	w.st = stream.New(j)
	st := &StreamTask{Task: t, st: w.st}
	return st, t.Resume()
}

type streamWork struct {
	job     *stream.Job
	st      *stream.Stream
	onReply func(ReplyEvent)
}

func (w *streamWork) run(ctx context.Context, t *Task) (*Result, error) {
	res, err := w.st.Run(ctx)
	if err != nil {
		return nil, err
	}
	return &Result{
		URL: w.job.URL, Location: res.Location, Size: res.Bytes, Uploaded: t.meter.Moved(),
		SHA256: res.SHA256, Proto: res.Proto, Verified: verified(res.Verified),
	}, nil
}

func verified(ok bool) []string {
	if ok {
		return []string{"server sha-256"}
	}
	return nil
}

func (w *streamWork) resumeData() (*ResumeData, error) { return nil, ErrNotResumable }

// discard ends the stream for good.
func (w *streamWork) discard() { w.st.Abort(ErrCanceled) }
