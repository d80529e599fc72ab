package ferry

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/download"
	"github.com/ferryhq/ferry/internal/statefile"
)

// NewDownload creates a suspended download task; call Resume to start it.
// The task lives until it completes or ctx is done (a cancelled ctx stops
// the task but keeps its files, so the same request can continue later).
func (s *Session) NewDownload(ctx context.Context, req DownloadRequest) (*Task, error) {
	stream, err := req.check()
	if err != nil {
		return nil, err
	}
	if s.bg != nil {
		return s.backgroundDownload(ctx, req, stream)
	}
	if err := req.Schedule.foreground(); err != nil {
		return nil, err
	}
	w := &downloadWork{s: s, req: req, stream: stream}
	if req.CreateDirs && !stream {
		if w.madeDirs, err = mkdirs(filepath.Dir(req.Path)); err != nil {
			return nil, err
		}
	}
	var seed *download.State
	if req.ResumeData != nil {
		st := req.ResumeData.state
		seed = &st
	}
	if s.cfg.Ephemeral || stream {
		w.saved = download.NewMemState(seed)
	} else {
		cf := download.ControlFile(download.ControlPath(req.Path))
		if seed != nil {
			if err := cf.Save(seed); err != nil {
				return nil, err
			}
		}
		w.saved = cf
	}
	return s.newTask(ctx, w)
}

// ForgetDownload removes the control file a download with req.KeepState
// left after success.
func (s *Session) ForgetDownload(req DownloadRequest) error {
	if s.cfg.Ephemeral {
		return nil
	}
	req.check() // a directory's Path names the file inside, as it did for the download
	return download.ControlFile(download.ControlPath(req.Path)).Remove()
}

// Download starts a download and returns its running task.
func (s *Session) Download(ctx context.Context, req DownloadRequest) (*Task, error) {
	return started(s.NewDownload(ctx, req))
}

// downloadWork runs the download engine for a task.
type downloadWork struct {
	s        *Session
	req      DownloadRequest
	saved    statefile.Store[download.State]
	stream   bool     // the destination is written in place: a Writer, a device, a FIFO
	streamed int64    // bytes earlier runs wrote to the stream
	madeDirs []string // directories CreateDirs made, deepest first
}

// countingWriter counts what goes through to w.
type countingWriter struct {
	w io.Writer
	n *int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	*c.n += int64(n)
	return n, err
}

func (w *downloadWork) run(ctx context.Context, t *Task) (*Result, error) {
	j := &download.Job{
		Env:            w.s.env(t, w.req.URL, w.req.Header, w.req.RateLimit),
		Path:           w.req.Path,
		Saved:          w.saved,
		Continue:       w.req.Continue,
		Connections:    w.req.Connections,
		MaxConnections: min(w.s.cfg.MaxConnsPerHost, MaxConnections),
		Hash:           w.req.SHA256,
		KeepState:      w.req.KeepState,
	}
	if w.req.Checksum != "" {
		alg, sum, _ := ParseChecksum(w.req.Checksum)
		j.Checksum = &download.Checksum{Algorithm: alg, Hex: sum}
	}
	if w.stream {
		if w.streamed > 0 {
			// Suspended after writing: starting over would write those
			// bytes again.
			return nil, &Error{Op: "download", URL: w.req.URL,
				Err: fmt.Errorf("%w (suspended after %d bytes)", ErrStreamRestart, w.streamed)}
		}
		out := w.req.Writer
		if out == nil {
			f, err := atomicfile.OpenStream(ctx, w.req.Path)
			if err != nil {
				return nil, &Error{Op: "open", URL: w.req.URL, Err: err}
			}
			defer f.Close()
			out = f
		}
		j.Stream = countingWriter{out, &w.streamed}
	}
	res, err := download.Run(ctx, j)
	if err != nil {
		w.removeMadeDirs()
		return nil, err
	}
	return &Result{
		URL: res.URL, Path: res.Path, Size: res.Size, ResumedFrom: res.ResumedFrom,
		Downloaded: t.meter.Moved(), SHA256: res.SHA256, Proto: res.Proto, Verified: res.Verified,
	}, nil
}

func (w *downloadWork) resumeData() (*ResumeData, error) {
	if w.stream {
		return nil, ErrNotResumable
	}
	st, err := w.saved.Load()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, ErrNotResumable
	}
	return &ResumeData{URL: w.req.URL, Path: w.req.Path, state: *st}, nil
}

func (w *downloadWork) discard() {
	if w.stream {
		return
	}
	os.Remove(download.PartPath(w.req.Path))
	w.saved.Remove()
	w.removeMadeDirs()
}

// removeMadeDirs removes the directories CreateDirs made once nothing of
// the download is in them.
func (w *downloadWork) removeMadeDirs() {
	if len(w.madeDirs) == 0 {
		return
	}
	if _, err := os.Lstat(download.PartPath(w.req.Path)); err == nil {
		return // kept to continue from
	}
	removeDirs(w.madeDirs)
}
