package ferry

import (
	"errors"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/download"
	"github.com/ferryhq/ferry/internal/stream"
	"github.com/ferryhq/ferry/internal/transfer"
)

// Error is a failed transfer step: the operation ("probe", "download",
// "commit", ...), the URL and the cause. Unwrap it with errors.As.
type Error = transfer.Error

// StatusError is an HTTP status that ended a transfer.
type StatusError = transfer.StatusError

// UnsafeFileError reports a name ferry would have to follow, write through
// or replace, and does not: a symbolic link (except to a directory, device
// or FIFO the user names as the destination), a directory, device, FIFO or
// socket where a regular file belongs, a file with other hard links, or one
// another user owns. The file is left as it is.
type UnsafeFileError = atomicfile.UnsafeError

// IntegrityError reports a result whose size or digest is not what was
// expected. The file is never placed under its final name.
type IntegrityError = transfer.IntegrityError

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
