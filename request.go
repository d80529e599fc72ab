package ferry

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DownloadRequest describes a download.
type DownloadRequest struct {
	// URL is the http or https resource. It may be empty when ResumeData
	// is given.
	URL string
	// Path is the destination file. Bytes go to Path+".part" until the
	// download is complete and verified; then the file is fsynced and
	// renamed to Path. It may be empty when ResumeData or Writer is given.
	//
	// A directory (or a Path ending in a separator) gets the file inside,
	// named RemoteName(URL); Result.Path says where. A device or FIFO is
	// written in place as a stream, as with Writer. A symbolic link is
	// followed only to a directory, a device or a FIFO (such as
	// /dev/stdout), and only when the effective user or root owns it and
	// the device or FIFO: one another user planted would send the bytes
	// where they chose. Anything else is refused with an *UnsafeFileError
	// and left as it is: a link to a regular file or to nothing, a socket,
	// a .part or control file that is not a regular file of this user with
	// one link. Only a regular file is ever replaced. A directory that does
	// not exist is refused (ErrMissingDir) before the first request,
	// unless CreateDirs.
	Path string
	// Writer, if set, receives the body in order as it arrives instead of
	// a file: over one connection, with no .part or control file and no
	// resume in a later run. A dropped connection still continues with a
	// range while the server keeps the same strong validator; anything
	// that would need the bytes written to be taken back fails with
	// ErrStreamRestart. A checksum is verified after the last byte: the
	// writer has the bytes by then, and the task fails with an
	// *IntegrityError. Continue, KeepState, ResumeData and Connections
	// above 1 do not go with it, and a task suspended after it wrote
	// bytes fails when resumed (ErrStreamRestart).
	Writer io.Writer
	// CreateDirs makes the missing directories of Path (0777 less the
	// umask), like curl's --create-dirs. Those it made are removed again
	// if the download fails keeping nothing.
	CreateDirs bool
	// Header is added to this task's requests (after the session's);
	// credentials among it go only to the URL's origin (see
	// Config.Header).
	Header http.Header
	// Connections is how many connections fetch the file. 0, the default,
	// adapts: it starts with two ranged requests in parallel and adds a
	// connection while the total rate still rises, up to the session's
	// MaxConnsPerHost (at most MaxConnections). 1 is a single stream; N > 1
	// is N connections, at most MaxConnections. Files are split only when
	// the server serves ranges under a strong validator.
	Connections int
	// Checksum, "sha-256=HEX" or "sha-512=HEX", is the digest the result
	// must have; on a mismatch the task fails with an *IntegrityError and
	// nothing is left at Path.
	Checksum string
	// SHA256 asks for the SHA-256 of the result in Result.SHA256. It is
	// computed while writing, so it costs no extra pass over the file.
	SHA256 bool
	// Continue adopts an existing file at Path that ferry did not start as
	// the first bytes of the download (like wget -c). Without it such a
	// file is replaced.
	Continue bool
	// ResumeData continues a download cancelled with CancelWithResumeData,
	// possibly by another process.
	ResumeData *ResumeData
	// KeepState leaves the control file in place after success, recording
	// the file put in place: the same request run again returns it without
	// fetching while it is unchanged, until ForgetDownload. A program that
	// records results elsewhere (the daemon does, in its journal) uses it
	// to survive a crash between the download's end and that record.
	KeepState bool
	// RateLimit caps this task's bytes per second (0: no cap of its own),
	// within the session's Config.RateLimit.
	RateLimit int64
	// Schedule, for a background session, says when the task may start.
	Schedule
}

// ErrInvalidRequest reports a request that cannot be started.
var ErrInvalidRequest = errors.New("ferry: invalid request")

// Bounds of the counts and sizes a request sets. A value outside them is
// refused with a *LimitError before the task starts.
const (
	// MaxConnections is the most connections (or segments in flight) one
	// download, upload or HLS download may use. More would not be faster:
	// each costs a buffer and a goroutine, and servers limit them anyway.
	MaxConnections = 64
	// MinChunkSize is the smallest fixed append an upload may ask for
	// (UploadRequest.ChunkSize): each append is a request and, in
	// parallel, a tus upload of its own.
	MinChunkSize = 64 << 10
)

// LimitError reports a count or size of a request outside its documented
// bounds. It matches ErrInvalidRequest with errors.Is. A limit a server's
// answer passes, such as a playlist of more segments than
// HLSRequest.MaxSegments, is not one: the request was valid, and the task
// fails with the cause (an *hls.LimitError).
type LimitError struct {
	Field    string // the request's field, e.g. "Connections"
	Value    int64
	Min, Max int64 // Max is 0 when there is no upper bound
}

func (e *LimitError) Error() string {
	if e.Max == 0 {
		return fmt.Sprintf("ferry: invalid request: %s is %d, below the least allowed, %d", e.Field, e.Value, e.Min)
	}
	return fmt.Sprintf("ferry: invalid request: %s is %d, outside %d to %d", e.Field, e.Value, e.Min, e.Max)
}

// Unwrap makes a LimitError match ErrInvalidRequest.
func (e *LimitError) Unwrap() error { return ErrInvalidRequest }

// checkURL refuses a request URL that is not absolute http(s).
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: URL %q is not an absolute http(s) URL", ErrInvalidRequest, raw)
	}
	return nil
}

// checkLimit refuses v outside [lo, hi] (hi 0: no upper bound).
func checkLimit(field string, v, lo, hi int64) error {
	if v < lo || (hi != 0 && v > hi) {
		return &LimitError{Field: field, Value: v, Min: lo, Max: hi}
	}
	return nil
}

// checkConnections refuses a Connections field outside 0 to MaxConnections
// (0 is each request type's default).
func checkConnections(n int) error {
	return checkLimit("Connections", int64(n), 0, MaxConnections)
}

// checkRateLimit refuses a negative RateLimit (0 is none).
func checkRateLimit(n int64) error { return checkLimit("RateLimit", n, 0, 0) }

// Validate reports whether the request would be taken, with the error
// Session.Download would return, without starting anything, and fills in
// what Download would: URL and Path from ResumeData, and for a directory,
// the file inside it that Path names then. A program that queues requests
// for later (the daemon does) checks them with it.
func (r *DownloadRequest) Validate() error { return r.validate() }

func (r *DownloadRequest) validate() error {
	_, err := r.check()
	return err
}

// check validates the request and resolves its destination (see Path),
// reporting whether it is a stream: a Writer, a device or a FIFO.
func (r *DownloadRequest) check() (stream bool, err error) {
	if rd := r.ResumeData; rd != nil {
		if r.URL == "" {
			r.URL = rd.URL
		}
		if r.Path == "" {
			r.Path = rd.Path
		}
		if r.URL != rd.URL {
			return false, fmt.Errorf("%w: resume data is for %s, not %s", ErrInvalidRequest, rd.URL, r.URL)
		}
	}
	if err := checkURL(r.URL); err != nil {
		return false, err
	}
	if err := checkConnections(r.Connections); err != nil {
		return false, err
	}
	if err := checkRateLimit(r.RateLimit); err != nil {
		return false, err
	}
	if r.Checksum != "" {
		if _, _, err := ParseChecksum(r.Checksum); err != nil {
			return false, err
		}
	}
	stream = r.Writer != nil
	if !stream {
		if r.Path == "" {
			return false, fmt.Errorf("%w: no destination path", ErrInvalidRequest)
		}
		if r.Path, stream, err = resolveDestination(r.Path, r.URL, r.CreateDirs); err != nil {
			return false, err
		}
	}
	if stream && (r.Continue || r.KeepState || r.ResumeData != nil || r.Connections > 1) {
		return false, fmt.Errorf("%w: a stream destination is written once, over one connection: no Continue, KeepState, ResumeData or Connections above 1", ErrInvalidRequest)
	}
	return stream, nil
}

// ParseChecksum splits "sha-256=HEX" (or sha-512) into the algorithm and
// the lowercase hex digest, checking the digest's length.
func ParseChecksum(s string) (alg, digest string, err error) {
	alg, digest, ok := strings.Cut(strings.TrimSpace(s), "=")
	alg = strings.ToLower(alg)
	digest = strings.ToLower(digest)
	size := map[string]int{"sha-256": 32, "sha256": 32, "sha-512": 64, "sha512": 64}[alg]
	if !ok || size == 0 {
		return "", "", fmt.Errorf("%w: checksum %q: want sha-256=HEX or sha-512=HEX", ErrInvalidRequest, s)
	}
	if b, err := hex.DecodeString(digest); err != nil || len(b) != size {
		return "", "", fmt.Errorf("%w: checksum %q: digest must be %d hex digits", ErrInvalidRequest, s, 2*size)
	}
	return "sha-" + strings.TrimPrefix(strings.TrimPrefix(alg, "sha-"), "sha"), digest, nil
}
