// Package hlsdownload is the engine behind ferry's HLS downloads: it reads a
// multivariant or media playlist, picks a variant and its renditions,
// fetches the segments in parallel (retrying each, decrypting AES-128,
// coalescing adjacent byte ranges of one resource into one request), and
// writes a local playlist whose entries are the local files.
//
// Every segment is committed under a name derived from its media sequence
// number and its source (URL, range, key), so a rerun over the same
// directory fetches only what is missing, and a file under a final name is
// always whole. The local playlist is written last, and only when every
// segment it names is there.
package hlsdownload

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ferryhq/ferry/hls"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/transfer"
)

// DefaultConnections is how many segments are fetched at once by default.
const DefaultConnections = 8

// Job describes one HLS download: the task's Env, whose URL is a
// multivariant (master) or media playlist, and what is particular to HLS.
type Job struct {
	*send.Env
	Dir string // the output directory

	// Variant picks among a multivariant playlist's variants: "best" (the
	// default: the highest BANDWIDTH), "worst", or a 0-based index in
	// playlist order. MaxBandwidth, when positive, leaves out variants
	// above it (the lowest is taken when all are).
	Variant      string
	MaxBandwidth int64
	// Connections is how many requests run at once (0: DefaultConnections).
	Connections int
	// LiveDuration stops recording a live playlist after this long; 0
	// records until the playlist ends (EXT-X-ENDLIST).
	LiveDuration time.Duration
	// StopLive, when closed, ends a live recording as if its time were up.
	StopLive <-chan struct{}
	// AllowHoles lets the download succeed without the segments that could
	// not be fetched: the local playlist leaves them out (marking a
	// discontinuity). Without it such a download fails.
	AllowHoles bool
	// Concat, when set, is a file to join the main playlist's segments into
	// (its initialization section first).
	Concat string
	// MaxSegments bounds each media playlist and each live recording (0:
	// hls.DefaultMaxSegments, negative: no bound): a larger playlist is
	// refused, a live recording ends at it.
	MaxSegments int
}

// Result describes a finished download.
type Result struct {
	URL      string
	Playlist string       // the local top-level playlist
	Variant  *hls.Variant // the variant taken from a multivariant playlist
	Segments int          // segments named by the local playlists
	Fetched  int          // of those, fetched by this run
	Holes    []Hole       // segments left out (AllowHoles)
	Bytes    int64        // on disk, segments and initialization sections
	Duration float64      // of the main playlist, seconds
	Concat   string
	Proto    string
	// LiveEnded says why a live recording ended before its time (its
	// playlist could no longer be loaded, or its numbering went back);
	// what it recorded until then is written.
	LiveEnded string
}

// Hole is a segment that could not be fetched.
type Hole struct {
	Playlist string
	Seq      int64
	URL      string
	Err      error
}

func (h Hole) String() string {
	if h.URL == "" { // never seen: the live playlist dropped it first
		return fmt.Sprintf("segment %d of %s: %v", h.Seq, h.Playlist, h.Err)
	}
	return fmt.Sprintf("segment %d of %s (%s): %v", h.Seq, h.Playlist, transfer.Redacted(h.URL), h.Err)
}

// HolesError reports segments that could not be fetched, for a download
// that does not allow holes. The segments that were fetched stay in the
// directory, so a rerun of a VOD fetches only these. A live recording's
// playlist is written without them (Playlist).
type HolesError struct {
	Holes    []Hole
	Playlist string // written anyway, for a live recording
}

func (e *HolesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hls: %d segment(s) could not be fetched: %s", len(e.Holes), e.Holes[0])
	if len(e.Holes) > 1 {
		fmt.Fprintf(&b, " (and %d more)", len(e.Holes)-1)
	}
	if e.Playlist != "" {
		fmt.Fprintf(&b, "; the recording is in %s without them", e.Playlist)
	}
	return b.String()
}

// Unwrap gives the holes' causes to errors.Is and errors.As.
func (e *HolesError) Unwrap() []error {
	errs := make([]error, len(e.Holes))
	for i, h := range e.Holes {
		errs[i] = h.Err
	}
	return errs
}

// ErrUnsupported reports a stream ferry cannot store playably, such as one
// encrypted with a DRM key system.
var ErrUnsupported = errors.New("hls: unsupported stream")

// PlaylistError reports a playlist that could not be read.
type PlaylistError struct {
	URL string
	Err error
}

func (e *PlaylistError) Error() string {
	return fmt.Sprintf("hls: playlist %s: %v", transfer.Redacted(e.URL), e.Err)
}
func (e *PlaylistError) Unwrap() error { return e.Err }

// KeyError reports a decryption key that could not be used.
type KeyError struct {
	URL string
	Err error
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("hls: key %s: %v", transfer.Redacted(e.URL), e.Err)
}
func (e *KeyError) Unwrap() error { return e.Err }
