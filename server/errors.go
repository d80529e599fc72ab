package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ferryhq/ferry/internal/problem"
)

// Error is a failure the server reports to a client. Code names it for
// programs and logs; Status is the HTTP status it is sent with. Two Errors
// match under [errors.Is] when their codes are equal.
type Error struct {
	Code    string
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// The errors the server answers with, each with its wire code and status.
var (
	ErrBadPath   = &Error{"bad-path", http.StatusBadRequest, "server: malformed request path"}
	ErrNotFound  = &Error{"not-found", http.StatusNotFound, "server: file not found"}
	ErrForbidden = &Error{"forbidden", http.StatusForbidden, "server: permission denied"}
	ErrInternal  = &Error{"internal", http.StatusInternalServerError, "server: internal error"}
	// ErrUnauthorized answers an upload request without the right bearer
	// token (Config.Token).
	ErrUnauthorized = &Error{"unauthorized", http.StatusUnauthorized, "server: missing or wrong bearer token"}
	// ErrClientBusy answers a request with content from a client address
	// that has Config.MaxUploadsPerClient of them in flight. (Creating
	// uploads too fast is resumable.ErrTooManyUploads.)
	ErrClientBusy = &Error{"too-many-requests", http.StatusTooManyRequests, "server: too many requests with content at once from this address"}
)

// writeProblem sends e as a problem details object (RFC 9457), as the
// upload endpoints answer their errors.
func writeProblem(w http.ResponseWriter, r *http.Request, e *Error) {
	problem.Write(w, r, problem.Details{
		Type:   "urn:ferry:problem:" + e.Code,
		Title:  e.Message,
		Status: e.Status,
		Code:   e.Code,
	})
}

// writeError sends e as a plain-text body. The message is the same for every
// cause of e, so nothing about the file system leaks to the client.
func writeError(w http.ResponseWriter, e *Error) {
	http.Error(w, e.Message, e.Status)
}

// Causes of a [ConfigError].
var (
	ErrNoRoot    = errors.New("server: Config.Root is required")
	ErrNotDir    = errors.New("server: not a directory")
	ErrNoHandler = errors.New("server: Options.Handler is required")
	ErrTLSPair   = errors.New("server: TLSCertFile and TLSKeyFile must be set together")
	// ErrRootInState reports a Root that is, or is inside, a directory
	// the server keeps its own state in (Uploads, Streams, Hide): all of
	// it would be hidden, or none of it.
	ErrRootInState = errors.New("server: the root is inside a directory of ferry's own state")
)

// ConfigError reports a setting that [New] or [Serve] cannot work with. Err
// is one of the sentinels above or the error from the file system, which
// unwraps to [io/fs.ErrNotExist] when Config.Root is missing.
type ConfigError struct {
	Field string // e.g. "Root"
	Value string
	Err   error
}

func (e *ConfigError) Error() string {
	if e.Value == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("server: %s %q: %v", e.Field, e.Value, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }
