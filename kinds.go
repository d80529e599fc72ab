package ferry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/internal/download"
)

// The table of task kinds. A background task travels to the daemon, and
// stays in its journal, as a spec: the JSON of its kind's bgapi request.
// Each row holds the two conversions between a library request and its
// spec; everything else the daemon does with a task (check it, start it,
// forget or discard what it kept, describe it) goes through the request
// the spec decodes to. An option of a kind is a field of its library
// request, of its spec, and the two lines of its row that copy it.

// storedRequest is a library request the daemon runs.
type storedRequest interface {
	// check refuses what the daemon could never run, and returns the spec
	// to store (a directory's path naming the file inside it).
	check() (any, error)
	start(ctx context.Context, s *Session) (*Task, error)
	// forget removes the state a finished task kept until its result was
	// recorded.
	forget(s *Session) error
	// discard removes what a cancelled task that was not running kept.
	discard(s *Session) error
	// ends are the task's remote and local ends, for a listing.
	ends() (remote, local string)
}

type taskKind struct {
	decode func(spec json.RawMessage) (storedRequest, error)
}

var taskKinds = map[string]taskKind{
	bgapi.KindGet: {decode: decodeAs(func(r bgapi.GetRequest) storedRequest {
		return &storedDownload{DownloadRequest{URL: r.URL, Path: r.Path, Connections: r.Connections,
			Checksum: r.Checksum, CreateDirs: r.CreateDirs, Header: r.Header, SHA256: true, KeepState: true,
			RateLimit: r.RateLimit}, r}
	})},
	bgapi.KindPut: {decode: decodeAs(func(r bgapi.PutRequest) storedRequest {
		return &storedUpload{UploadRequest{URL: r.URL, Path: r.Path, Protocol: Protocol(r.Protocol),
			Connections: r.Connections, ChunkSize: r.ChunkSize, Metadata: r.Metadata, FieldName: r.FieldName,
			Idempotent: r.Idempotent, Form: formFromSpec(r.Form),
			Header: r.Header, SHA256: true, KeepState: true, RateLimit: r.RateLimit}, r}
	})},
	bgapi.KindHLS: {decode: decodeAs(func(r bgapi.HLSRequest) storedRequest {
		return &storedHLS{HLSRequest{URL: r.URL, Dir: r.Dir, Variant: r.Variant, MaxBandwidth: r.MaxBandwidth,
			Connections: r.Connections, LiveDuration: time.Duration(r.LiveDuration), AllowHoles: r.AllowHoles,
			Concat: r.Concat, MaxSegments: r.MaxSegments, Header: r.Header, RateLimit: r.RateLimit}, r}
	})},
}

// downloadSpec, uploadSpec and hlsSpec are the other way of the rows: a
// background session's request as the daemon is sent it. Paths go
// absolute: the daemon's working directory is not this program's.
func downloadSpec(req DownloadRequest, h http.Header) (*bgapi.GetRequest, error) {
	path, err := filepath.Abs(req.Path)
	return &bgapi.GetRequest{URL: req.URL, Path: path, Connections: req.Connections, Checksum: req.Checksum,
		CreateDirs: req.CreateDirs, Header: h, SHA256: req.SHA256, KeepState: req.KeepState,
		RateLimit: req.RateLimit}, err
}

func uploadSpec(req UploadRequest, h http.Header) (*bgapi.PutRequest, error) {
	path, err := req.Path, error(nil)
	if path != "" { // a form's upload may have no file of its own
		path, err = filepath.Abs(path)
	}
	return &bgapi.PutRequest{URL: req.URL, Path: path, Protocol: string(req.Protocol), Connections: req.Connections,
		ChunkSize: req.ChunkSize, Metadata: req.Metadata, FieldName: req.FieldName,
		Idempotent: req.Idempotent, Form: formSpec(req.Form), Header: h, SHA256: req.SHA256, KeepState: req.KeepState,
		RateLimit: req.RateLimit}, err
}

func hlsSpec(req HLSRequest, h http.Header) (*bgapi.HLSRequest, error) {
	dir, err := filepath.Abs(req.Dir)
	concat := req.Concat
	if err == nil && concat != "" {
		concat, err = filepath.Abs(concat)
	}
	return &bgapi.HLSRequest{URL: req.URL, Dir: dir, Variant: req.Variant, MaxBandwidth: req.MaxBandwidth,
		Connections: req.Connections, LiveDuration: bgapi.Duration(req.LiveDuration), AllowHoles: req.AllowHoles,
		Concat: concat, MaxSegments: req.MaxSegments, Header: h, RateLimit: req.RateLimit}, err
}

// decodeAs makes a row's decode from the conversion of its spec type.
func decodeAs[T any](conv func(T) storedRequest) func(json.RawMessage) (storedRequest, error) {
	return func(spec json.RawMessage) (storedRequest, error) {
		var r T
		if err := json.Unmarshal(spec, &r); err != nil {
			return nil, err
		}
		return conv(r), nil
	}
}

// StoredTask is a background task as the daemon keeps it: its kind
// ("get", "put", "hls") and its spec. The daemon runs stored tasks
// through a Session's methods below, so that what a kind means is said in
// one place.
type StoredTask struct {
	Kind string
	Spec json.RawMessage
}

func (st StoredTask) request() (storedRequest, error) {
	k, ok := taskKinds[st.Kind]
	if !ok {
		return nil, fmt.Errorf("%w: unknown kind %q", ErrInvalidRequest, st.Kind)
	}
	return k.decode(st.Spec)
}

// Check refuses a stored task the daemon could never run, and returns the
// spec to keep for it.
func (st StoredTask) Check() (json.RawMessage, error) {
	r, err := st.request()
	if err != nil {
		return nil, err
	}
	v, err := r.check()
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// Ends are the task's remote end (its URL) and its local one (a path or a
// directory); ok is false for a spec that does not decode.
func (st StoredTask) Ends() (remote, local string, ok bool) {
	r, err := st.request()
	if err != nil {
		return "", "", false
	}
	remote, local = r.ends()
	return remote, local, true
}

// StartStored starts a stored task on s.
func (s *Session) StartStored(ctx context.Context, st StoredTask) (*Task, error) {
	r, err := st.request()
	if err != nil {
		return nil, err
	}
	return r.start(ctx, s)
}

// ForgetStored removes the state a finished stored task kept until its
// result was recorded, unless its request asked to keep it.
func (s *Session) ForgetStored(st StoredTask) error {
	r, err := st.request()
	if err != nil {
		return err
	}
	return r.forget(s)
}

// DiscardStored removes what a cancelled stored task kept: a download's
// partial and control files, an upload's resume state.
func (s *Session) DiscardStored(st StoredTask) error {
	r, err := st.request()
	if err != nil {
		return err
	}
	return r.discard(s)
}

// storedDownload is a download the daemon runs: req as it runs it (always
// hashed, its state kept until the result is recorded), spec as it was
// sent (whether the caller wants the state kept after that).
type storedDownload struct {
	req  DownloadRequest
	spec bgapi.GetRequest
}

func (d *storedDownload) check() (any, error) {
	if !filepath.IsAbs(d.req.Path) {
		return nil, fmt.Errorf("path %q is not absolute", d.req.Path)
	}
	if k, _ := atomicfile.Classify(d.req.Path); k == atomicfile.Stream {
		return nil, fmt.Errorf("path %q is a device or FIFO: the daemon writes regular files", d.req.Path)
	}
	// Kept with the file's own name (a directory gets the file inside),
	// so that every later step names the same files.
	err := d.req.Validate()
	d.spec.Path = d.req.Path
	return d.spec, err
}

func (d *storedDownload) start(ctx context.Context, s *Session) (*Task, error) {
	return s.Download(ctx, d.req)
}

func (d *storedDownload) forget(s *Session) error {
	if d.spec.KeepState {
		return nil
	}
	return s.ForgetDownload(d.req)
}

func (d *storedDownload) discard(*Session) error {
	if d.req.Path == "" {
		return nil
	}
	os.Remove(download.PartPath(d.req.Path))
	os.Remove(download.ControlPath(d.req.Path))
	return nil
}

func (d *storedDownload) ends() (string, string) { return d.req.URL, d.req.Path }

type storedUpload struct {
	req  UploadRequest
	spec bgapi.PutRequest
}

func (u *storedUpload) check() (any, error) {
	if !filepath.IsAbs(u.req.Path) {
		return nil, fmt.Errorf("path %q is not absolute", u.req.Path)
	}
	return u.spec, u.req.Validate()
}

func (u *storedUpload) start(ctx context.Context, s *Session) (*Task, error) {
	return s.Upload(ctx, u.req)
}

func (u *storedUpload) forget(s *Session) error {
	if u.spec.KeepState {
		return nil
	}
	return s.ForgetUpload(u.req)
}

func (u *storedUpload) discard(s *Session) error {
	if u.req.Path == "" {
		return nil
	}
	return s.ForgetUpload(u.req)
}

func (u *storedUpload) ends() (string, string) { return u.req.URL, u.req.Path }

type storedHLS struct {
	req  HLSRequest
	spec bgapi.HLSRequest
}

func (h *storedHLS) check() (any, error) {
	if !filepath.IsAbs(h.req.Dir) || (h.req.Concat != "" && !filepath.IsAbs(h.req.Concat)) {
		return nil, fmt.Errorf("dir %q and concat %q must be absolute", h.req.Dir, h.req.Concat)
	}
	return h.spec, h.req.Validate()
}

func (h *storedHLS) start(ctx context.Context, s *Session) (*Task, error) { return s.HLS(ctx, h.req) }

// An HLS download keeps no state beyond its segment files, which a later
// run uses whatever became of this one.
func (h *storedHLS) forget(*Session) error  { return nil }
func (h *storedHLS) discard(*Session) error { return nil }

func (h *storedHLS) ends() (string, string) { return h.req.URL, h.req.Dir }

// formSpec and formFromSpec carry a multipart upload's parts to the daemon
// and back; file paths go absolute.
func formSpec(parts []FormPart) []bgapi.FormPart {
	var out []bgapi.FormPart
	for _, p := range parts {
		if p.Path != "" {
			if abs, err := filepath.Abs(p.Path); err == nil {
				p.Path = abs
			}
		}
		out = append(out, bgapi.FormPart(p))
	}
	return out
}

func formFromSpec(parts []bgapi.FormPart) []FormPart {
	var out []FormPart
	for _, p := range parts {
		out = append(out, FormPart(p))
	}
	return out
}
