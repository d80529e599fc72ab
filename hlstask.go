package ferry

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ferryhq/ferry/hls"
	"github.com/ferryhq/ferry/internal/hlsdownload"
)

// HLSRequest describes an HLS download: a playlist fetched with its
// segments into Dir, and a local playlist written there that plays offline.
type HLSRequest struct {
	// URL of a multivariant (master) or media playlist.
	URL string
	// Dir receives the segments and the local playlist, Dir/index.m3u8.
	// Running the same request over the same Dir again fetches only what
	// is missing. It is made when missing; anything there that is not a
	// directory, or a link to one, is refused before the first request.
	Dir    string
	Header http.Header
	// Variant picks among a multivariant playlist's variants: "best" (the
	// default, highest bandwidth), "worst", or a 0-based index in playlist
	// order. MaxBandwidth, when positive, leaves out variants above it.
	// The variant's audio, video and subtitle renditions come with it (one
	// per group: the default one).
	Variant      string
	MaxBandwidth int64
	// Connections is how many segments are fetched at once; 0 means 8, and
	// at most MaxConnections.
	Connections int
	// LiveDuration stops recording a live playlist after this long; 0
	// records until the playlist ends. Recording starts three segments
	// from the live end.
	LiveDuration time.Duration
	// StopLive, when closed, ends a live recording as if its time were up:
	// the task completes with what it recorded (a VOD download ignores it).
	StopLive <-chan struct{}
	// AllowHoles lets the download succeed without segments that could
	// not be fetched after retries; the local playlist leaves them out and
	// Result.HLS.Holes lists them. Without it, the task fails.
	AllowHoles bool
	// Concat, if set, is a file the main playlist's segments are joined
	// into (an fMP4 stream's initialization section first). Its directory
	// must exist; a device or FIFO is written in place, and what a
	// download's Path refuses is refused here too, before the first
	// request.
	Concat string
	// MaxSegments bounds the segments of each media playlist, and of each
	// live recording, so that a hostile playlist cannot take unbounded
	// memory (each segment takes about 1.5 KiB while it downloads). A
	// playlist of more fails with an *hls.LimitError; a live recording
	// that reaches it ends with what it has (Result.HLS.LiveEnded says so).
	// 0 means hls.DefaultMaxSegments; negative means no bound.
	MaxSegments int
	// RateLimit caps this task's bytes per second (0: no cap of its own),
	// within the session's Config.RateLimit.
	RateLimit int64
	// Schedule, for a background session, says when the task may start.
	Schedule
}

// HLSResult is what a finished HLS download reports (Result.HLS).
type HLSResult struct {
	Variant  *hls.Variant // the variant taken from a multivariant playlist
	Segments int          // segments named by the local playlists
	Fetched  int          // of those, fetched by this run
	Holes    []HLSHole
	Duration float64 // of the main playlist, seconds
	Concat   string
	// LiveEnded says why a live recording ended before its time, if it did
	// (its playlist went away, its numbering went back, or it reached
	// MaxSegments).
	LiveEnded string
}

// HLSHole is a segment an HLS download left out.
type HLSHole struct {
	Playlist string
	Seq      int64
	URL      string
	Err      error
}

func (h HLSHole) String() string { return hlsdownload.Hole(h).String() }

// HLSHolesError: segments could not be fetched and holes were not
// allowed. Those fetched stay, so the same request continues. Playlist is
// the media playlist written anyway, for a live recording.
type HLSHolesError struct {
	Holes    []HLSHole
	Playlist string
}

func (e *HLSHolesError) Error() string {
	return (&hlsdownload.HolesError{Holes: engineHoles(e.Holes), Playlist: e.Playlist}).Error()
}

// Unwrap gives the holes' causes to errors.Is and errors.As.
func (e *HLSHolesError) Unwrap() []error {
	return (&hlsdownload.HolesError{Holes: engineHoles(e.Holes)}).Unwrap()
}

// HLSPlaylistError: a playlist could not be fetched or read.
type HLSPlaylistError struct {
	URL string
	Err error
}

func (e *HLSPlaylistError) Error() string { return (*hlsdownload.PlaylistError)(e).Error() }
func (e *HLSPlaylistError) Unwrap() error { return e.Err }

// HLSKeyError: a decryption key could not be fetched or used.
type HLSKeyError struct {
	URL string
	Err error
}

func (e *HLSKeyError) Error() string { return (*hlsdownload.KeyError)(e).Error() }
func (e *HLSKeyError) Unwrap() error { return e.Err }

func publicHoles(hs []hlsdownload.Hole) []HLSHole {
	out := make([]HLSHole, len(hs))
	for i, h := range hs {
		out[i] = HLSHole(h)
	}
	return out
}

func engineHoles(hs []HLSHole) []hlsdownload.Hole {
	out := make([]hlsdownload.Hole, len(hs))
	for i, h := range hs {
		out[i] = hlsdownload.Hole(h)
	}
	return out
}

// ErrHLSUnsupported reports a stream that cannot be stored playably, such
// as one encrypted for a DRM key system.
var ErrHLSUnsupported = hlsdownload.ErrUnsupported

// HLS starts an HLS download and returns its running task.
func (s *Session) HLS(ctx context.Context, req HLSRequest) (*Task, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	if s.bg != nil {
		return started(s.backgroundHLS(ctx, req))
	}
	if err := req.Schedule.foreground(); err != nil {
		return nil, err
	}
	return started(s.newTask(ctx, &hlsWork{s: s, req: req}))
}

// Validate reports whether the request would be taken, with the error
// Session.HLS would return, without starting anything.
func (r *HLSRequest) Validate() error { return r.validate() }

func (r *HLSRequest) validate() error {
	if err := checkURL(r.URL); err != nil {
		return err
	}
	if r.Dir == "" {
		return fmt.Errorf("%w: no Dir", ErrInvalidRequest)
	}
	if err := checkHLSPaths(r.Dir, r.Concat); err != nil {
		return err
	}
	switch r.Variant {
	case "", "best", "worst":
	default:
		if i, err := strconv.Atoi(r.Variant); err != nil || i < 0 {
			return fmt.Errorf("%w: Variant %q: want best, worst or an index", ErrInvalidRequest, r.Variant)
		}
	}
	if err := checkConnections(r.Connections); err != nil {
		return err
	}
	if r.MaxBandwidth < 0 || r.LiveDuration < 0 {
		return fmt.Errorf("%w: negative MaxBandwidth or LiveDuration", ErrInvalidRequest)
	}
	if err := checkRateLimit(r.RateLimit); err != nil {
		return err
	}
	return nil
}

type hlsWork struct {
	s   *Session
	req HLSRequest
}

func (w *hlsWork) run(ctx context.Context, t *Task) (*Result, error) {
	j := &hlsdownload.Job{
		Env:          w.s.env(t, w.req.URL, w.req.Header, w.req.RateLimit),
		Dir:          w.req.Dir,
		Variant:      w.req.Variant,
		MaxBandwidth: w.req.MaxBandwidth,
		Connections:  w.req.Connections,
		LiveDuration: w.req.LiveDuration,
		StopLive:     w.req.StopLive,
		AllowHoles:   w.req.AllowHoles,
		Concat:       w.req.Concat,
		MaxSegments:  w.req.MaxSegments,
	}
	res, err := hlsdownload.Run(ctx, j)
	if err != nil {
		return nil, err
	}
	return &Result{
		URL: res.URL, Path: res.Playlist, Size: res.Bytes, Downloaded: t.meter.Moved(), Proto: res.Proto,
		HLS: &HLSResult{Variant: res.Variant, Segments: res.Segments, Fetched: res.Fetched, Holes: publicHoles(res.Holes),
			Duration: res.Duration, Concat: res.Concat, LiveEnded: res.LiveEnded},
	}, nil
}

// resumeData: running the same request over the same directory continues.
func (w *hlsWork) resumeData() (*ResumeData, error) { return nil, ErrNotResumable }

// discard keeps what the download wrote: every segment under its name is
// whole, Dir may hold the user's own files, and a rerun continues from them.
func (w *hlsWork) discard() {}
