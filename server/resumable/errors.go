package resumable

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/ferryhq/ferry/internal/problem"
	"github.com/ferryhq/ferry/server/store"
)

// Error is a failure the handler reports to a client. It is sent as a
// problem details object (RFC 9457, application/problem+json) in both
// dialects: tus clients ignore the body, draft clients read its type.
//
// Code names the failure for programs and logs; two Errors match under
// [errors.Is] when their codes are equal.
type Error struct {
	Code   string
	Status int
	Title  string
	// Type is the problem type URI. Types the resumable-upload draft
	// registers use their IANA URI; the others are urn:ferry:problem:<Code>.
	Type string
	// Detail explains this occurrence; Extra holds extension members such
	// as the draft's expected-offset and provided-offset.
	Detail string
	Extra  map[string]any
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return "resumable: " + e.Title + ": " + e.Detail
	}
	return "resumable: " + e.Title
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// with returns a copy of e for one occurrence.
func (e *Error) with(detail string, args ...any) *Error {
	c := *e
	c.Detail = fmt.Sprintf(detail, args...)
	return &c
}

// withExtra returns a copy of e with an extension member added.
func (e *Error) withExtra(key string, v any) *Error {
	c := *e
	c.Extra = make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		c.Extra[k] = v
	}
	c.Extra[key] = v
	return &c
}

const ianaProblems = "https://iana.org/assignments/http-problem-types#"

// StatusChecksumMismatch is tus's status for a chunk whose Upload-Checksum
// does not match (tus 1.0.0, checksum extension).
const StatusChecksumMismatch = 460

// The errors the handler answers with, each with its code and status.
var (
	ErrUnsupportedVersion = &Error{Code: "unsupported-version", Status: http.StatusPreconditionFailed, Title: "unsupported protocol version: send Tus-Resumable: 1.0.0 or a supported Upload-Draft-Interop-Version"}
	ErrInteropVersion     = &Error{Code: "unsupported-interop-version", Status: http.StatusBadRequest, Title: "unsupported Upload-Draft-Interop-Version"}
	ErrMaxSizeExceeded    = &Error{Code: "max-size-exceeded", Status: http.StatusRequestEntityTooLarge, Title: "upload is larger than the server accepts"}
	ErrSizeExceeded       = &Error{Code: "upload-size-exceeded", Status: http.StatusRequestEntityTooLarge, Title: "content goes past the upload's length"}
	ErrContentType        = &Error{Code: "invalid-content-type", Status: http.StatusUnsupportedMediaType, Title: "wrong Content-Type for appending to an upload"}
	ErrInvalidOffset      = &Error{Code: "invalid-upload-offset", Status: http.StatusBadRequest, Title: "missing or malformed Upload-Offset"}
	ErrInvalidLength      = &Error{Code: "invalid-upload-length", Status: http.StatusBadRequest, Title: "missing or malformed Upload-Length"}
	ErrAmbiguousLength    = &Error{Code: "ambiguous-upload-length", Status: http.StatusBadRequest, Title: "Upload-Length and Upload-Defer-Length together"}
	ErrInvalidDefer       = &Error{Code: "invalid-upload-defer-length", Status: http.StatusBadRequest, Title: "Upload-Defer-Length must be 1"}
	ErrInconsistentLength = &Error{Code: "inconsistent-upload-length", Status: http.StatusBadRequest, Title: "inconsistent length values for upload", Type: ianaProblems + "inconsistent-upload-length"}
	ErrInvalidComplete    = &Error{Code: "invalid-upload-complete", Status: http.StatusBadRequest, Title: "Upload-Complete (interop 3: Upload-Incomplete) is not a structured Boolean, ?0 or ?1"}
	ErrInvalidMetadata    = &Error{Code: "invalid-upload-metadata", Status: http.StatusBadRequest, Title: "malformed Upload-Metadata"}
	ErrInvalidConcat      = &Error{Code: "invalid-upload-concat", Status: http.StatusBadRequest, Title: "invalid Upload-Concat"}
	ErrInvalidChecksum    = &Error{Code: "invalid-checksum", Status: http.StatusBadRequest, Title: "malformed or unsupported Upload-Checksum or Content-Digest"}
	ErrChecksumMismatch   = &Error{Code: "checksum-mismatch", Status: StatusChecksumMismatch, Title: "checksum mismatch: nothing was appended"}
	ErrDigestMismatch     = &Error{Code: "content-digest-mismatch", Status: http.StatusBadRequest, Title: "Content-Digest mismatch: nothing was appended"}
	ErrReprDigestMismatch = &Error{Code: "repr-digest-mismatch", Status: http.StatusBadRequest, Title: "Repr-Digest of the complete upload does not match: the upload failed"}
	ErrInvalidDigest      = &Error{Code: "invalid-repr-digest", Status: http.StatusBadRequest, Title: "malformed or unsupported Repr-Digest"}
	ErrInvalidDisposition = &Error{Code: "invalid-content-disposition", Status: http.StatusBadRequest, Title: "malformed Content-Disposition"}
	ErrNotFound           = &Error{Code: "upload-not-found", Status: http.StatusNotFound, Title: "upload not found"}
	ErrMethodNotAllowed   = &Error{Code: "method-not-allowed", Status: http.StatusMethodNotAllowed, Title: "method not allowed"}
	ErrGone               = &Error{Code: "upload-lost", Status: http.StatusGone, Title: "upload cannot continue: stored data was lost"}
	ErrLocked             = &Error{Code: "upload-locked", Status: http.StatusLocked, Title: "upload is busy with another request; retry later"}
	ErrMismatchOffset     = &Error{Code: "mismatching-upload-offset", Status: http.StatusConflict, Title: "offset from request does not match offset of resource", Type: ianaProblems + "mismatching-upload-offset"}
	ErrCompleted          = &Error{Code: "completed-upload", Status: http.StatusBadRequest, Title: "upload is already completed", Type: ianaProblems + "completed-upload"}
	ErrModifyFinal        = &Error{Code: "modify-final", Status: http.StatusForbidden, Title: "a final (concatenated) upload takes no content"}
	ErrPartialNotFinished = &Error{Code: "partial-not-finished", Status: http.StatusBadRequest, Title: "a partial upload is not finished"}
	ErrIncomplete         = &Error{Code: "upload-incomplete", Status: http.StatusConflict, Title: "upload is not complete yet"}
	ErrNotImplemented     = &Error{Code: "not-implemented", Status: http.StatusNotImplemented, Title: "the upload store cannot do this"}
	ErrInterrupted        = &Error{Code: "upload-interrupted", Status: http.StatusBadRequest, Title: "request was taken over by a newer request for this upload"}
	ErrBodyTimeout        = &Error{Code: "body-timeout", Status: http.StatusRequestTimeout, Title: "request content stalled: none arrived within the server's idle timeout; resume from the upload's offset"}
	ErrBodyRead           = &Error{Code: "body-read-failed", Status: http.StatusBadRequest, Title: "request content ended early or could not be read; resume from the upload's offset"}
	ErrTooManyUploads     = &Error{Code: "too-many-uploads", Status: http.StatusTooManyRequests, Title: "too many uploads created by this client; retry later"}
	ErrStorageFull        = &Error{Code: "storage-full", Status: http.StatusInsufficientStorage, Title: "the server's upload storage is full"}
	ErrNotMultipart       = &Error{Code: "not-multipart", Status: http.StatusUnsupportedMediaType, Title: "POST /upload takes multipart/form-data"}
	ErrMalformedForm      = &Error{Code: "malformed-multipart", Status: http.StatusBadRequest, Title: "malformed multipart/form-data"}
	ErrNoFiles            = &Error{Code: "no-files", Status: http.StatusBadRequest, Title: "the form has no file parts"}
	ErrInternal           = &Error{Code: "internal", Status: http.StatusInternalServerError, Title: "internal server error"}
)

// errTakenOver is the cause a request is cancelled with when a newer
// request for the same upload takes over.
var errTakenOver = errors.New("resumable: taken over by a newer request")

// errBodyRead marks a failure to read the request content, and
// errBodyTimeout one where the content stalled past a deadline (the
// server's idle timeout).
var (
	errBodyRead    = errors.New("resumable: reading request content")
	errBodyTimeout = errors.New("resumable: request content stalled")
)

// bodyError marks err, a failure to read the request content, as
// errBodyRead, and as errBodyTimeout too when a deadline ended the read.
func bodyError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w: %w", errBodyRead, errBodyTimeout, err)
	}
	return fmt.Errorf("%w: %w", errBodyRead, err)
}

// errorTable maps errors from stores and the request body to what the
// client sees. The first match wins.
var errorTable = []struct {
	err  error
	resp *Error
}{
	{errTakenOver, ErrInterrupted},
	{store.ErrNotFound, ErrNotFound},
	{store.ErrOffsetMismatch, ErrMismatchOffset},
	{store.ErrSizeExceeded, ErrSizeExceeded},
	{store.ErrInvalidLength, ErrInconsistentLength},
	{store.ErrNotFinished, ErrPartialNotFinished},
	{store.ErrLockTimeout, ErrLocked},
	{store.ErrLost, ErrGone},
	{errMaxSize, ErrMaxSizeExceeded},
	{errStorageFull, ErrStorageFull},
	{errBodyTimeout, ErrBodyTimeout},
	{errBodyRead, ErrBodyRead},
	{context.Canceled, ErrBodyRead},
	{context.DeadlineExceeded, ErrBodyTimeout},
}

// toError returns the *Error for err, and whether it is one the client
// caused (as opposed to a failure of the server, which is logged).
func toError(err error) (*Error, bool) {
	if e, ok := errors.AsType[*Error](err); ok {
		return e, e.Code != ErrInternal.Code
	}
	for _, m := range errorTable {
		if errors.Is(err, m.err) {
			return m.resp, true
		}
	}
	return ErrInternal, false
}

// writeProblem sends e with the headers already set on w.
func writeProblem(w http.ResponseWriter, r *http.Request, e *Error) {
	typ := e.Type
	if typ == "" {
		typ = "urn:ferry:problem:" + e.Code
	}
	problem.Write(w, r, problem.Details{
		Type: typ, Title: e.Title, Status: e.Status, Detail: e.Detail, Code: e.Code, Extra: e.Extra,
	})
}
