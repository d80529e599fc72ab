package ferry

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferryhq/ferry/internal/data"

	"github.com/ferryhq/ferry/internal/statefile"
	"github.com/ferryhq/ferry/internal/upload"
)

// Protocol names how a file is uploaded.
type Protocol string

// The upload protocols.
const (
	// ProtocolAuto asks the server with OPTIONS: tus if it speaks tus, the
	// IETF resumable-upload draft if it says so, multipart otherwise.
	ProtocolAuto Protocol = "auto"
	// ProtocolTus is tus 1.0 (https://tus.io), resumable and, with the
	// concatenation extension, parallel.
	ProtocolTus Protocol = "tus"
	// ProtocolIETF is the IETF resumable-upload draft (interop version 6).
	ProtocolIETF Protocol = "ietf"
	// ProtocolMultipart is one multipart/form-data POST, streamed from the
	// file. It cannot resume, and a failed POST is sent again only when it
	// never reached the server or the server said it did not act on it
	// (408, 425, 429, or 503 with Retry-After).
	ProtocolMultipart Protocol = "multipart"
	// ProtocolPut sends the file as the raw body of one PUT, streamed
	// with its length: what S3 presigned URLs, WebDAV and nginx's
	// dav_methods PUT take. It cannot resume; a PUT is idempotent, so a
	// failed one is sent again whole.
	ProtocolPut Protocol = "put"
	// ProtocolPost sends the file as the raw body of one POST. It is sent
	// again as a multipart POST is, or whenever UploadRequest.Idempotent
	// says it is safe.
	ProtocolPost Protocol = "post"
)

// plain reports whether p sends the file as the raw body of one request.
func (p Protocol) plain() bool { return p == ProtocolPut || p == ProtocolPost }

// UploadRequest describes an upload.
type UploadRequest struct {
	// URL is where uploads are created (a tus or IETF endpoint such as
	// https://host/files/) or the form's URL for multipart.
	URL string
	// Path is the local file.
	Path     string
	Protocol Protocol // "" means ProtocolAuto
	Header   http.Header
	// Metadata goes to the server as tus Upload-Metadata; "filename"
	// defaults to Path's base name. Keys are printable ASCII without
	// spaces or commas; values are any text.
	Metadata map[string]string
	// Connections > 1 sends segments in parallel through tus
	// concatenation, when the server offers it; at most MaxConnections.
	Connections int
	// ChunkSize fixes the size of each append, at least MinChunkSize; 0
	// measures the speed with a first 4 MiB append and then aims at about
	// 2 seconds per append.
	ChunkSize int64
	// FieldName is the form field of a multipart upload ("file").
	FieldName string
	// Form, for a multipart upload, holds parts sent before Path's: text
	// fields and more files, each streamed from disk with an exact
	// Content-Length. With Form, Path may be empty, Protocol is multipart
	// (or unset), and SHA256 is not reported.
	Form []FormPart
	// Idempotent says a plain POST may be sent again after a failure
	// that may have reached the server (an upload endpoint that replaces
	// what it is sent, say).
	Idempotent bool
	// SHA256 asks for the SHA-256 of the file in Result.SHA256.
	SHA256 bool
	// KeepState leaves the upload's resume state in place after success,
	// so that the same request run again finds the upload complete and
	// finishes without sending it again, until ForgetUpload. A program that
	// records results elsewhere (the daemon does, in its journal) uses it
	// to survive a crash between the upload's end and that record.
	// Multipart uploads have no resume state.
	KeepState bool
	// RateLimit caps this task's bytes per second (0: no cap of its own),
	// within the session's Config.RateLimit.
	RateLimit int64
	// Schedule, for a background session, says when the task may start.
	Schedule
}

// Validate reports whether the request would be taken, with the error
// Session.Upload would return, without starting anything.
func (r *UploadRequest) Validate() error { return r.validate() }

func (r *UploadRequest) validate() error {
	if err := checkURL(r.URL); err != nil {
		return err
	}
	switch r.Protocol {
	case "", ProtocolAuto, ProtocolTus, ProtocolIETF, ProtocolMultipart, ProtocolPut, ProtocolPost:
	default:
		return fmt.Errorf("%w: unknown protocol %q", ErrInvalidRequest, r.Protocol)
	}
	if len(r.Form) > 0 {
		return r.validateForm()
	}
	if r.Path == "" {
		return fmt.Errorf("%w: no file to upload", ErrInvalidRequest)
	}
	fi, err := os.Stat(r.Path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrInvalidRequest, r.Path)
	}
	if err := checkConnections(r.Connections); err != nil {
		return err
	}
	if r.Protocol.plain() && r.Connections > 1 {
		return fmt.Errorf("%w: a %s upload is one request: Connections must be 0 or 1", ErrInvalidRequest, r.Protocol)
	}
	if err := checkRateLimit(r.RateLimit); err != nil {
		return err
	}
	if r.ChunkSize != 0 {
		if err := checkLimit("ChunkSize", r.ChunkSize, MinChunkSize, 0); err != nil {
			return err
		}
	}
	for k := range r.Metadata {
		if !metadataKey(k) {
			return fmt.Errorf("%w: metadata key %q: want printable ASCII without spaces or commas", ErrInvalidRequest, k)
		}
	}
	return nil
}

// FormPart is a part of a multipart/form-data upload (UploadRequest.Form):
// a text field (Name, Value), or a file (Name, Path) streamed from disk.
type FormPart struct {
	Name  string
	Value string
	// Path is a file part's file. FileName, if set, is the name the part
	// gives it (else Path's base name); ContentType its type (else by its
	// name's extension, else by its first 512 bytes).
	Path        string
	FileName    string
	ContentType string
}

// validateForm checks a multipart upload with Form parts.
func (r *UploadRequest) validateForm() error {
	switch r.Protocol {
	case "", ProtocolAuto, ProtocolMultipart:
	default:
		return fmt.Errorf("%w: Form goes with the multipart protocol, not %s", ErrInvalidRequest, r.Protocol)
	}
	if _, _, err := data.Form(r.formParts()); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	return checkRateLimit(r.RateLimit)
}

// formParts are the parts of a multipart upload with Form: Form's, then
// Path's under FieldName.
func (r *UploadRequest) formParts() []data.FormPart {
	parts := make([]data.FormPart, 0, len(r.Form)+1)
	for _, p := range r.Form {
		parts = append(parts, data.FormPart(p))
	}
	if r.Path != "" {
		parts = append(parts, data.FormPart{Name: cmp.Or(r.FieldName, "file"), Path: r.Path})
	}
	return parts
}

// metadataKey reports whether k may be a key of tus Upload-Metadata
// (tus 1.0 §Upload-Metadata: not empty, no spaces, no commas, ASCII):
// only printable ASCII, since a comma would start another pair (setting
// filename, say) and a space would end the key early.
func metadataKey(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		if c := k[i]; c <= ' ' || c > '~' || c == ',' {
			return false
		}
	}
	return true
}

// NewUpload creates a suspended upload task; call Resume to start it. Unless
// the session is ephemeral, the upload's URL and acknowledged offset are
// kept in the session's state directory, so the same upload requested again
// (by this process or a new one) continues where the server stopped.
func (s *Session) NewUpload(ctx context.Context, req UploadRequest) (*Task, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	if s.bg != nil {
		return s.backgroundUpload(ctx, req)
	}
	if err := req.Schedule.foreground(); err != nil {
		return nil, err
	}
	w := &uploadWork{s: s, req: req}
	if s.cfg.Ephemeral {
		w.saved = statefile.NewMem[upload.State](nil)
	} else {
		dir := filepath.Join(s.cfg.StateDir, "uploads")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		w.saved = statefile.File[upload.State]{Path: upload.StatePath(dir, req.Path, req.URL)}
	}
	return s.newTask(ctx, w)
}

// ForgetUpload removes the resume state an upload with req.KeepState left.
func (s *Session) ForgetUpload(req UploadRequest) error {
	if s.cfg.Ephemeral {
		return nil
	}
	dir := filepath.Join(s.cfg.StateDir, "uploads")
	return statefile.File[upload.State]{Path: upload.StatePath(dir, req.Path, req.URL)}.Remove()
}

// Upload starts an upload and returns its running task.
func (s *Session) Upload(ctx context.Context, req UploadRequest) (*Task, error) {
	return started(s.NewUpload(ctx, req))
}

type uploadWork struct {
	s     *Session
	req   UploadRequest
	saved statefile.Store[upload.State]
}

func (w *uploadWork) run(ctx context.Context, t *Task) (*Result, error) {
	if w.req.Protocol.plain() || len(w.req.Form) > 0 {
		return w.runPlain(ctx, t)
	}
	j := &upload.Job{
		Env:         w.s.env(t, w.req.URL, w.req.Header, w.req.RateLimit),
		Path:        w.req.Path,
		Protocol:    upload.Protocol(w.req.Protocol),
		Metadata:    w.req.Metadata,
		Connections: w.req.Connections,
		ChunkSize:   w.req.ChunkSize,
		FieldName:   w.req.FieldName,
		Hash:        w.req.SHA256,
		Saved:       w.saved,
		KeepState:   w.req.KeepState,
	}
	res, err := upload.Run(ctx, j)
	if err != nil {
		return nil, err
	}
	return &Result{
		URL: res.URL, Path: res.Path, Size: res.Size, ResumedFrom: res.ResumedFrom,
		Uploaded: res.Uploaded, Location: res.Location, Protocol: Protocol(res.Protocol),
		SHA256: res.SHA256, Proto: res.Proto, Response: res.Response,
	}, nil
}

// runPlain sends the file as the body of one PUT or POST, or a form of
// several parts as one multipart POST, through the data engine: progress
// counts what is sent, and a final status other than 2xx fails the upload
// with a *StatusError.
func (w *uploadWork) runPlain(ctx context.Context, t *Task) (*Result, error) {
	header := w.req.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	method, protocol := strings.ToUpper(string(w.req.Protocol)), w.req.Protocol
	var body *data.Body
	var err error
	if len(w.req.Form) > 0 {
		var ct string
		if body, ct, err = data.Form(w.req.formParts()); err != nil {
			return nil, err
		}
		header.Set("Content-Type", ct)
		method, protocol = http.MethodPost, ProtocolMultipart
	} else if body, err = fileBody(w.req.Path); err != nil {
		return nil, err
	}
	if header.Get("Content-Type") == "" {
		// Header may name the body's type; a file's bytes are octets.
		header.Set("Content-Type", "application/octet-stream")
	}
	j := &data.Job{
		Env:        w.s.env(t, w.req.URL, header, w.req.RateLimit),
		Method:     method,
		Body:       body,
		Idempotent: w.req.Idempotent,
		Upload:     true,
		MaxBody:    maxPlainResponse,
		Hash:       w.req.SHA256 && len(w.req.Form) == 0, // of the file, not of a form
		Fail:       true,
	}
	res, err := data.Run(ctx, j)
	if err != nil {
		return nil, err
	}
	return &Result{
		URL: w.req.URL, Path: w.req.Path, Size: body.Size, Uploaded: res.Sent, Downloaded: res.Received,
		Protocol: protocol, Proto: res.Proto, Response: res.Body, StatusCode: res.StatusCode,
		Header: res.Header, SHA256: res.SHA256, Location: res.Header.Get("Location"),
	}, nil
}

// maxPlainResponse bounds the response body a plain upload keeps, as a
// multipart upload's: an upload endpoint answers with a receipt, not a
// file.
const maxPlainResponse = 1 << 20

// resumeData is not offered for uploads: their state file already lets the
// same request continue, in this process or another.
func (w *uploadWork) resumeData() (*ResumeData, error) { return nil, ErrNotResumable }

// discard forgets the upload. What the server holds stays there (a tus
// server expires abandoned uploads).
func (w *uploadWork) discard() { w.saved.Remove() }
