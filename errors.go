package ferry

import (
	"errors"
	"time"

	"github.com/ferryhq/ferry/internal/data"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/download"
	"github.com/ferryhq/ferry/internal/hlsdownload"
	"github.com/ferryhq/ferry/internal/stream"
	"github.com/ferryhq/ferry/internal/transfer"
)

// Error is a failed transfer step, in the shape of net/url.Error: the
// operation ("probe", "download", "commit", ...), the URL and the cause.
// Every task's error is one; unwrap it with errors.Is and errors.As, which
// find the public error types below (StatusError, IntegrityError, ...)
// among its causes.
type Error struct {
	Op  string
	URL string
	Err error
}

func (e *Error) Error() string { return (*transfer.Error)(e).Error() }

func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the cause was a timeout.
func (e *Error) Timeout() bool { return (*transfer.Error)(e).Timeout() }

// As finds the public form of an engine's error among the causes.
func (e *Error) As(target any) bool { return asPublic(e.Err, target) }

// StatusError is an HTTP response whose status ended or interrupted a
// transfer.
type StatusError struct {
	StatusCode int
	Status     string
	// RetryAfter is what the server's Retry-After asked for, if anything.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string { return e.engine().Error() }

// Retryable reports whether the status is one that may pass (408, 425,
// 429, 500, 502, 503, 504), so that asking again later may succeed.
func (e *StatusError) Retryable() bool { return e.engine().Retryable() }

func (e *StatusError) engine() *transfer.StatusError {
	return &transfer.StatusError{StatusCode: e.StatusCode, Status: e.Status, RetryAfter: e.RetryAfter}
}

// UnsafeFileError reports a name ferry would have to follow, write through
// or replace, and does not: a symbolic link (except to a directory, device
// or FIFO the user names as the destination), a directory, device, FIFO or
// socket where a regular file belongs, a file with other hard links, or one
// another user owns. The file is left as it is. It matches ErrUnsafeFile.
type UnsafeFileError struct {
	Path string
	What string // "is a symbolic link", "has 2 hard links", ...
}

func (e *UnsafeFileError) Error() string { return (*atomicfile.UnsafeError)(e).Error() }

// Unwrap makes an UnsafeFileError match ErrUnsafeFile.
func (e *UnsafeFileError) Unwrap() error { return ErrUnsafeFile }

// IntegrityError reports a result whose size or digest is not what was
// expected. The file is never placed under its final name.
type IntegrityError struct {
	What string // "size", "sha-256", "sha-512"
	Want string
	Got  string
}

func (e *IntegrityError) Error() string { return (*transfer.IntegrityError)(e).Error() }

// Sentinel errors, matched with errors.Is.
var (
	ErrIdleTimeout     = transfer.ErrIdleTimeout
	ErrTooSlow         = transfer.ErrTooSlow
	ErrResourceTimeout = transfer.ErrResourceTimeout
	ErrCanceled        = transfer.ErrCanceled
	// ErrStreamLost: a live stream that is not resumable lost its
	// connection; what was sent cannot be continued.
	ErrStreamLost          = stream.ErrLost
	ErrBadContentRange     = transfer.ErrBadContentRange
	ErrRangeNotSatisfiable = transfer.ErrRangeNotSatisfiable
	ErrShortBody           = transfer.ErrShortBody
	ErrTooManyRedirects    = transfer.ErrTooManyRedirects
	// ErrUnsafeURL: a server pointed to a URL ferry does not follow (in
	// a redirect, an upload's Location or a playlist): not http or
	// https, without a host, or with credentials in it.
	ErrUnsafeURL = transfer.ErrUnsafeURL
	// ErrBusy: another download (in this process or another) is writing
	// to the same file.
	ErrBusy = download.ErrBusy
	// ErrStreamRestart: a download to a stream (DownloadRequest.Writer, a
	// device, a FIFO) would have to start over, and what it wrote cannot
	// be taken back.
	ErrStreamRestart = download.ErrStreamRestart
	// ErrUnsafeFile is what every *UnsafeFileError matches.
	ErrUnsafeFile = atomicfile.ErrUnsafe

	// ErrInvalidConfig is returned by NewSession for a Config it cannot use.
	ErrInvalidConfig = errors.New("ferry: invalid config")
	// ErrSessionClosed is returned when a task is created on a closed session.
	ErrSessionClosed = errors.New("ferry: session closed")
	// ErrNotResumable is returned by CancelWithResumeData when there is
	// nothing to resume from (the task never reached the server).
	ErrNotResumable = errors.New("ferry: task has no resume data")
	// ErrTaskCompleted is returned when a completed task is asked to run again.
	ErrTaskCompleted = errors.New("ferry: task already completed")
)

// publicError is an engine's error as the public API shows it: a
// *transfer.Error becomes an *Error; any other error is wrapped so that
// errors.As still finds the public types among its causes.
func publicError(err error) error {
	switch e := err.(type) {
	case nil, *Error, *causes:
		return err
	case *transfer.Error:
		return (*Error)(e)
	}
	return &causes{err}
}

// causes presents an error that is not an *Error with the public types
// among its causes.
type causes struct{ err error }

func (c *causes) Error() string      { return c.err.Error() }
func (c *causes) Unwrap() error      { return c.err }
func (c *causes) As(target any) bool { return asPublic(c.err, target) }

// asPublic sets target, a pointer to one of the public error types, from
// its engine twin in err's chain. The pointer conversions fail to compile
// when a public type and its twin drift apart.
func asPublic(err error, target any) bool {
	switch t := target.(type) {
	case **Error:
		if e, ok := errors.AsType[*transfer.Error](err); ok {
			*t = (*Error)(e)
			return true
		}
	case **StatusError:
		if e, ok := errors.AsType[*transfer.StatusError](err); ok {
			*t = &StatusError{StatusCode: e.StatusCode, Status: e.Status, RetryAfter: e.RetryAfter}
			return true
		}
	case **IntegrityError:
		if e, ok := errors.AsType[*transfer.IntegrityError](err); ok {
			*t = (*IntegrityError)(e)
			return true
		}
	case **ResponseTooLargeError:
		if e, ok := errors.AsType[*data.TooLargeError](err); ok {
			*t = (*ResponseTooLargeError)(e)
			return true
		}
	case **UnsafeFileError:
		if e, ok := errors.AsType[*atomicfile.UnsafeError](err); ok {
			*t = (*UnsafeFileError)(e)
			return true
		}
	case **HLSPlaylistError:
		if e, ok := errors.AsType[*hlsdownload.PlaylistError](err); ok {
			*t = (*HLSPlaylistError)(e)
			return true
		}
	case **HLSKeyError:
		if e, ok := errors.AsType[*hlsdownload.KeyError](err); ok {
			*t = (*HLSKeyError)(e)
			return true
		}
	case **HLSHolesError:
		if e, ok := errors.AsType[*hlsdownload.HolesError](err); ok {
			*t = &HLSHolesError{Holes: publicHoles(e.Holes), Playlist: e.Playlist}
			return true
		}
	}
	return false
}
