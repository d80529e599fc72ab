package stream

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/dialect"
	"github.com/ferryhq/ferry/internal/problem"
	"github.com/ferryhq/ferry/server/internal/clientaddr"
	"github.com/ferryhq/ferry/server/internal/setting"
	"github.com/ferryhq/ferry/server/internal/usercontent"
	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/filestore"
)

// Defaults for the zero values of Config.
const (
	DefaultBasePath = "/stream/"
	DefaultExpiry   = time.Hour
	DefaultAckEvery = time.Second
)

// RepliesAfterHeader names the last reply a client received; the response
// to its request starts after it.
const RepliesAfterHeader = "Ferry-Replies-After"

// Config configures a Handler. Dir is required. Every limit follows one
// rule: 0 means its default, a negative value turns it off.
type Config struct {
	// Dir keeps finished streams as Dir/<name>; a stream in progress is
	// an upload of deferred length in a store in Dir/.part until it
	// completes. New removes the uploads a server before it left that
	// went untouched for twice Expiry: no server sharing Dir with the same
	// Expiry still uses them.
	Dir string
	// BasePath is where streams live. Default "/stream/".
	BasePath string
	// Processors picks the processor of a new stream; nil or a nil
	// result means the stream is only stored.
	Processors ProcessorFactory
	// MaxSize bounds a stream, in bytes: past it the stream ends with an
	// error reply and is dropped. Default and off alike: no bound.
	MaxSize int64
	// Expiry is how long a resumable stream may go without a request
	// before it is dropped. 0: DefaultExpiry (an hour); negative: never
	// (it waits for its client, holding its place in MaxStreams).
	Expiry time.Duration
	// AckEvery spaces the "stored" replies, each sent once what it counts
	// is durable. 0: DefaultAckEvery (a second); negative: none.
	AckEvery time.Duration
	// Logger logs streams created, finished and dropped. Nil discards.
	Logger *slog.Logger
	// MaxStreams bounds the streams in progress at once, including
	// resumable ones waiting for their client's next request (each holds
	// its upload and a processor until it expires); beyond it a POST
	// gets 503 with Retry-After. 0: DefaultMaxStreams; negative: no
	// bound.
	MaxStreams int
	// MaxStreamsPerClient bounds the streams in progress of one client,
	// as ClientKey names it; beyond it a POST gets 429 with Retry-After.
	// 0: DefaultMaxStreamsPerClient; negative: no bound.
	MaxStreamsPerClient int
	// ClientKey names the client of a request; nil means by its
	// RemoteAddr as the rest of ferry's server does: an IP address, or
	// the /64 network of an IPv6 one.
	ClientKey func(r *http.Request) string
	// Storage, if set, counts what streams store against what the storage
	// may still take, shared with whatever else draws on it (ferry's
	// server shares its uploads'): each stream's bytes, and
	// store.RecordBytes for its file. A stream whose length does not fit,
	// or a request when nothing fits, gets 507 (Insufficient Storage); a
	// stream that fills the storage as it arrives ends with an error
	// reply, and is dropped when it is plain, or keeps what fit when it is
	// resumable, as a tus append does. A dropped stream gives back what
	// it held. Nil means no limit.
	Storage *store.Meter
	// CreationLimit, if set, is asked before a stream is created, with
	// the creating request: false answers 429 with Retry-After set to
	// retryAfter. ferry's server counts stream creations against the
	// allowance of upload creations of the client.
	CreationLimit func(r *http.Request) (ok bool, retryAfter time.Duration)
}

// Defaults of the bounds on streams in progress (see Config).
const (
	DefaultMaxStreams          = 1024
	DefaultMaxStreamsPerClient = 32
)

// Handler serves live streams. It is safe for concurrent use.
type Handler struct {
	cfg Config
	log *slog.Logger

	// The limits of cfg in force; 0: none.
	maxSize               int64
	expiry, ackEvery      time.Duration
	maxStreams, perClient int

	// store keeps the streams in progress, and up changes them (see
	// openStore).
	storeMu sync.Mutex
	store   partStore
	up      *resumable.Handler

	mu      sync.Mutex
	byID    map[string]*live
	names   map[string]*live
	clients map[string]int // streams in progress per client
}

// New returns a Handler; cfg.Dir is created with the first stream.
func New(cfg Config) (*Handler, error) {
	if cfg.Dir == "" {
		return nil, errors.New("stream: Config.Dir is required")
	}
	if cfg.BasePath == "" {
		cfg.BasePath = DefaultBasePath
	}
	if !strings.HasPrefix(cfg.BasePath, "/") || !strings.HasSuffix(cfg.BasePath, "/") {
		return nil, fmt.Errorf("stream: BasePath %q must start and end with /", cfg.BasePath)
	}
	if cfg.ClientKey == nil {
		cfg.ClientKey = func(r *http.Request) string { return clientaddr.Key(r.RemoteAddr) }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	expiry := setting.Resolve(cfg.Expiry, DefaultExpiry)
	h := &Handler{
		cfg: cfg, log: log,
		maxSize:    setting.Resolve(cfg.MaxSize, 0),
		expiry:     expiry,
		ackEvery:   setting.Resolve(cfg.AckEvery, DefaultAckEvery),
		maxStreams: setting.Resolve(cfg.MaxStreams, DefaultMaxStreams),
		perClient:  setting.Resolve(cfg.MaxStreamsPerClient, DefaultMaxStreamsPerClient),
		byID:       map[string]*live{}, names: map[string]*live{}, clients: map[string]int{},
	}
	if expiry > 0 {
		h.removeStale(2 * expiry)
	}
	return h, nil
}

// partStore is what a store of streams in progress does: a stream is an
// upload whose length is declared when it completes, and one that is
// dropped or left behind is removed. A finished stream is served as a
// file in Dir, so its bytes are a file beside it, linked there.
type partStore interface {
	store.Store
	store.LengthDeclarer
	store.Terminater
	store.Lister
	DataPath(id string) string
}

// partDir is where, below Dir, the store of streams in progress lives: a
// dot name, which no stream's name can be.
const partDir = ".part"

// parts is the store of streams in progress, opened by the first stream.
func (h *Handler) parts() partStore {
	h.storeMu.Lock()
	defer h.storeMu.Unlock()
	return h.store
}

// uploads changes the streams in progress; nil before the first stream.
func (h *Handler) uploads() *resumable.Handler {
	h.storeMu.Lock()
	defer h.storeMu.Unlock()
	return h.up
}

// openStore returns the store of streams in progress and the handler of
// its uploads, through which every change to them goes, as to the
// uploads of ferry's server: one lock a stream, one takeover, one count
// of the storage. Its directory appears with the first stream, not
// before.
func (h *Handler) openStore() (partStore, *resumable.Handler, error) {
	h.storeMu.Lock()
	defer h.storeMu.Unlock()
	if h.store == nil {
		st, err := filestore.New(filestore.Config{Dir: filepath.Join(h.cfg.Dir, partDir)})
		if err != nil {
			return nil, nil, err
		}
		h.store = st
	}
	if h.up == nil {
		up, err := resumable.New(resumable.Config{
			Store:   h.store,
			MaxSize: h.maxSize,
			Storage: h.cfg.Storage,
			// A stream expires with its processor (see release), and
			// the uploads of servers before are removed by New.
			Expiry:      -1,
			LockTimeout: takeoverWait,
			Logger:      h.log,
		})
		if err != nil {
			return nil, nil, err
		}
		h.up = up
	}
	return h.store, h.up, nil
}

// removeStale removes the streams in progress a server before this one
// left (it crashed, or was killed) that went untouched for age: they
// cannot be resumed. A server sharing Dir drops its own streams after
// Expiry without a request, so with age twice that no server still uses
// them.
func (h *Handler) removeStale(age time.Duration) {
	if _, err := os.Stat(filepath.Join(h.cfg.Dir, partDir)); err != nil {
		return // none yet, or the first stream will say why
	}
	st, _, err := h.openStore()
	if err != nil {
		return
	}
	ctx := context.Background()
	ids, _ := st.List(ctx)
	for _, id := range ids {
		// One written to lately may be another server's, which opening
		// it would disturb: the store cuts bytes past the recorded offset
		// off an upload it opens for the first time.
		if fi, err := os.Stat(st.DataPath(id)); err == nil && time.Since(fi.ModTime()) <= age {
			continue
		}
		up, err := st.GetUpload(ctx, id)
		if err != nil {
			continue
		}
		if info, err := up.GetInfo(ctx); err == nil && time.Since(info.UpdatedAt) > age {
			if st.Terminate(ctx, up) == nil {
				h.log.Info("stale stream removed", "id", id, "updated", info.UpdatedAt)
			}
		}
	}
}

// Close drops every stream in progress.
func (h *Handler) Close() error {
	h.mu.Lock()
	all := make([]*live, 0, len(h.byID))
	for _, l := range h.byID {
		all = append(all, l)
	}
	h.mu.Unlock()
	for _, l := range all {
		h.drop(l, errShutdown, nil)
	}
	if up := h.uploads(); up != nil {
		return up.Close()
	}
	return nil
}

// Usage returns what the finished streams in dir count as in
// Config.Storage: their bytes, and store.RecordBytes for each. Streams in
// progress (in Dir/.part) are not counted: they do not outlive the process
// that stored them. A dir that does not exist yet holds nothing.
func Usage(dir string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		n += store.RecordBytes + fi.Size()
	}
	return n, nil
}

// validName keeps a stream's name one plain file name.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, h.cfg.BasePath)
	if !ok || !validName.MatchString(name) {
		refuse(w, r, http.StatusNotFound, "no such stream: a name is letters, digits, '.', '_' and '-'")
		return
	}
	id := r.URL.Query().Get("upload")
	if id == "" {
		switch r.Method {
		case http.MethodPost:
			h.create(w, r, name)
		case http.MethodGet, http.MethodHead:
			h.serveFinished(w, r, name)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			refuse(w, r, http.StatusMethodNotAllowed, r.Method+" is not allowed here")
		}
		return
	}
	h.mu.Lock()
	l := h.byID[id]
	h.mu.Unlock()
	if l == nil || l.name != name {
		refuse(w, r, http.StatusNotFound, "no such stream upload (finished, expired or never created)")
		return
	}
	switch r.Method {
	case http.MethodHead:
		h.offset(w, r, l)
	case http.MethodPatch:
		h.append(w, r, l)
	case http.MethodDelete:
		h.cancel(w, r, l)
	default:
		w.Header().Set("Allow", "HEAD, PATCH, DELETE")
		refuse(w, r, http.StatusMethodNotAllowed, r.Method+" is not allowed on a stream upload")
	}
}

// create starts a stream: resumable when the request says whether it
// completes the upload (Upload-Complete).
func (h *Handler) create(w http.ResponseWriter, r *http.Request, name string) {
	d, ok := draft(w, r)
	if !ok {
		return
	}
	canResume := d.HasComplete(r)
	complete := true
	if canResume {
		if complete, ok = d.RequestComplete(r); !ok {
			refuse(w, r, http.StatusBadRequest, d.CompleteField()+" is not a structured boolean")
			return
		}
	}
	final := filepath.Join(h.cfg.Dir, name)
	h.mu.Lock()
	_, busy := h.names[name]
	h.mu.Unlock()
	if _, err := os.Lstat(final); busy || err == nil {
		refuse(w, r, http.StatusConflict, "a stream named "+strconv.Quote(name)+" exists or is in progress")
		return
	}
	if limit := h.cfg.CreationLimit; limit != nil {
		if ok, wait := limit(r); !ok {
			w.Header().Set("Retry-After", strconv.FormatInt(max(int64(math.Ceil(wait.Seconds())), 1), 10))
			refuse(w, r, http.StatusTooManyRequests, "this client creates streams and uploads too fast; retry later")
			return
		}
	}
	if err := h.cfg.Storage.Check(store.RecordBytes + contentNeed(r)); err != nil {
		storageFull(w, r, err)
		return
	}
	var proc Processor
	if h.cfg.Processors != nil {
		proc = h.cfg.Processors(name, r)
	}
	l, hold, err := h.start(name, canResume, proc, w, r)
	if err != nil {
		switch {
		case errors.Is(err, errNameTaken):
			refuse(w, r, http.StatusConflict, "a stream named "+strconv.Quote(name)+" is in progress")
			return
		case errors.Is(err, errTooMany):
			w.Header().Set("Retry-After", "10")
			refuse(w, r, http.StatusServiceUnavailable, err.Error())
			return
		case errors.Is(err, errTooManyFromClient):
			w.Header().Set("Retry-After", "10")
			refuse(w, r, http.StatusTooManyRequests, err.Error())
			return
		case errors.Is(err, store.ErrFull), errors.Is(err, resumable.ErrStorageFull):
			storageFull(w, r, err)
			return
		}
		h.log.Error("stream create", "name", name, "err", err)
		refuse(w, r, http.StatusInternalServerError, "cannot store the stream")
		return
	}
	if canResume {
		w.Header().Set("Location", l.url)
		w.Header().Set("Upload-Draft-Interop-Version", strconv.Itoa(d.Interop))
		w.WriteHeader(StatusUploadResumptionSupported)
	}
	h.transfer(w, r, d, l, hold, complete, 0, http.StatusCreated)
}

// StatusUploadResumptionSupported is the draft's interim 104 response.
const StatusUploadResumptionSupported = 104

// draft is the interop version of the draft that r speaks: the one it
// names, else the latest (a stream speaks no tus). A version this server
// does not speak is refused.
func draft(w http.ResponseWriter, r *http.Request) (dialect.Dialect, bool) {
	d, ok := dialect.Detect(r)
	if !ok {
		refuse(w, r, http.StatusBadRequest, fmt.Sprintf("Upload-Draft-Interop-Version %q is none this server speaks (%d to %d)",
			dialect.Field(r, "Upload-Draft-Interop-Version"), dialect.Versions[0], dialect.Latest))
		return d, false
	}
	if !d.IETF() {
		d = dialect.Dialect{Interop: dialect.Latest}
	}
	return d, true
}

// hold makes r the only request of l: a request still holding it is taken
// over (its client reconnected, so it is gone). It answers r itself and
// returns nil when the stream is gone or still busy.
func (h *Handler) hold(w http.ResponseWriter, r *http.Request, l *live) *resumable.Hold {
	hold, err := h.uploads().Hold(w, r, l.id, true)
	if err == nil && !l.enter() {
		hold.Release()
		err = resumable.ErrNotFound
	}
	switch {
	case err == nil:
		return hold
	case errors.Is(err, resumable.ErrNotFound):
		refuse(w, r, http.StatusNotFound, "no such stream upload (finished, expired or never created)")
	case errors.Is(err, resumable.ErrLocked):
		refuse(w, r, http.StatusLocked, "the stream is busy")
	case errors.Is(err, resumable.ErrBodyRead):
		// The client went while it waited.
	default:
		h.log.Error("stream hold", "name", l.name, "err", err)
		refuse(w, r, http.StatusInternalServerError, "cannot read the stream")
	}
	return nil
}

// offset answers HEAD with what the server holds. It takes the stream over
// from a request still running (its client has gone, or it would not ask),
// so the offset does not move after it is told.
func (h *Handler) offset(w http.ResponseWriter, r *http.Request, l *live) {
	d, ok := draft(w, r)
	if !ok {
		return
	}
	hold := h.hold(w, r, l)
	if hold == nil {
		return
	}
	defer h.release(l, hold)
	hd := w.Header()
	hd.Set("Upload-Offset", strconv.FormatInt(hold.Info().Offset, 10))
	d.SetComplete(hd, false)
	hd.Set("Upload-Draft-Interop-Version", strconv.Itoa(d.Interop))
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// append continues a resumable stream from Upload-Offset.
func (h *Handler) append(w http.ResponseWriter, r *http.Request, l *live) {
	d, ok := draft(w, r)
	if !ok {
		return
	}
	off, ok := d.RequestOffset(r)
	if !ok {
		refuse(w, r, http.StatusBadRequest, "Upload-Offset is missing or not a non-negative integer")
		return
	}
	complete, ok := d.RequestComplete(r)
	if !ok || !d.HasComplete(r) {
		refuse(w, r, http.StatusBadRequest, d.CompleteField()+" is missing or not a structured boolean")
		return
	}
	after, _ := strconv.ParseInt(r.Header.Get(RepliesAfterHeader), 10, 64)
	hold := h.hold(w, r, l)
	if hold == nil {
		return
	}
	if off != l.offset.Load() {
		h.release(l, hold)
		w.Header().Set("Upload-Offset", strconv.FormatInt(l.offset.Load(), 10))
		resumable.WriteError(w, r, resumable.MismatchedOffset(l.offset.Load(), off))
		return
	}
	if err := h.cfg.Storage.Check(contentNeed(r)); err != nil {
		h.release(l, hold)
		w.Header().Set("Upload-Offset", strconv.FormatInt(l.offset.Load(), 10))
		d.SetComplete(w.Header(), false)
		storageFull(w, r, err)
		return
	}
	l.forget(after)
	h.transfer(w, r, d, l, hold, complete, after, http.StatusOK)
}

// contentNeed is how much storage r's content asks for before it is read:
// its length, or one byte when it is unknown, so that a request is
// refused at once when nothing fits.
func contentNeed(r *http.Request) int64 {
	if r.ContentLength < 0 {
		return 1
	}
	return r.ContentLength
}

// storageFull answers 507 for a refusal of Config.Storage.
func storageFull(w http.ResponseWriter, r *http.Request, err error) {
	d := problem.Details{Title: "the server's storage is full", Status: http.StatusInsufficientStorage}
	if fe, ok := errors.AsType[*store.FullError](err); ok {
		d.Detail = fe.Reason()
	} else if re, ok := errors.AsType[*resumable.Error](err); ok {
		d.Detail = re.Detail
	}
	problem.Write(w, r, d)
}

// cancel drops a stream and what it stored.
func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, l *live) {
	hold := h.hold(w, r, l)
	if hold == nil {
		return
	}
	defer hold.Release()
	h.drop(l, errCanceled, hold)
	w.WriteHeader(http.StatusNoContent)
}

// transfer stores the request body, replying as the stream is processed.
// The caller holds l; transfer releases it.
func (h *Handler) transfer(w http.ResponseWriter, r *http.Request, d dialect.Dialect, l *live, hold *resumable.Hold, complete bool, after int64, status int) {
	rc := http.NewResponseController(w)
	// HTTP/1.1 would stop reading the body once the response starts.
	_ = rc.EnableFullDuplex()
	hd := w.Header()
	hd.Set("Content-Type", "application/x-ndjson")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	if l.resumable {
		hd.Set("Location", l.url)
		hd.Set("Upload-Draft-Interop-Version", strconv.Itoa(d.Interop))
		hd.Add("Trailer", "Upload-Offset")
		hd.Add("Trailer", d.CompleteField())
	}
	if r.ProtoMajor == 1 {
		// A body interrupted mid-way (a takeover, a drop) leaves its rest
		// on the connection, where net/http would read it as the next
		// request: the connection ends with the response. (Over HTTP/2
		// this field would end every stream of the connection.)
		hd.Set("Connection", "close")
	}
	w.WriteHeader(status)
	rc.Flush()

	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		l.sendReplies(w, rc, after, stop)
	}()

	bodyErr := h.receive(r, l, hold)
	switch {
	case bodyErr != nil && !l.resumable, errors.Is(bodyErr, errTooLarge):
		l.emit(errorReply{Type: "error", Error: bodyErr.Error()})
		h.drop(l, bodyErr, hold)
	case errors.Is(bodyErr, errStorageFull):
		// Kept as far as it fit, for a PATCH once there is room.
		l.emit(errorReply{Type: "error", Error: bodyErr.Error() + ": what fit is kept"})
	case bodyErr != nil:
		// Kept for a PATCH from where it stopped.
		h.log.Info("stream interrupted", "name", l.name, "offset", l.offset.Load(), "err", bodyErr)
	case complete:
		h.finish(l, hold)
	}
	close(stop)
	<-sent
	if l.resumable {
		hd.Set("Upload-Offset", strconv.FormatInt(l.offset.Load(), 10))
		d.SetComplete(hd, l.isDone())
	}
	h.release(l, hold)
}

var (
	errTooLarge    = errors.New("the stream exceeds the server's maximum size")
	errStorageFull = errors.New("the server's storage is full")
	errStalled     = errors.New("the stream's content stalled: none arrived within the server's idle timeout")
	errEndedEarly  = errors.New("the stream's content ended early")
	errStore       = errors.New("the server could not store the stream")
	errCanceled    = errors.New("the stream was cancelled")
	errTakenOver   = errors.New("the stream was taken over by a newer request")
	errShutdown    = errors.New("the server is shutting down")
	errExpired     = errors.New("the stream expired")
	errNameTaken   = errors.New("name taken")

	errTooMany           = errors.New("the server has as many streams in progress as it takes")
	errTooManyFromClient = errors.New("this client has as many streams in progress as it may")
)

// receive stores the body in l until its end (nil) or a failure, in
// pieces of AckEvery (one piece when there are no "stored" replies), each
// durable when it is written and replied as "stored". The processor and
// the sum are fed what the store is given.
func (h *Handler) receive(r *http.Request, l *live, hold *resumable.Hold) error {
	c := &content{h: h, l: l, body: r.Body}
	info, err := hold.Append(c, resumable.Appending{
		Pieces: store.Pieces{Every: h.ackEvery},
		Read:   l.feed,
		Durable: func(durable int64) {
			if durable > l.offset.Load() {
				l.offset.Store(durable)
				l.emit(storedReply{Type: "stored", Offset: durable})
			}
		},
	})
	l.offset.Store(info.Offset)
	switch {
	case l.isAbandoned():
		// Dropped meanwhile (Close, expiry): the drop removes the
		// upload once this request lets go.
		return errCanceled
	case err == nil:
		return nil
	case errors.Is(err, resumable.ErrMaxSizeExceeded):
		return errTooLarge
	case errors.Is(err, resumable.ErrStorageFull):
		return errStorageFull
	case c.err != nil:
		return c.err
	case errors.Is(err, resumable.ErrInterrupted):
		return errTakenOver
	}
	h.log.Error("stream write", "name", l.name, "err", err)
	return errStore
}

// content is a stream's body as the store reads it; a failure to read it
// is kept, as it is replied.
type content struct {
	h    *Handler
	l    *live
	body io.Reader
	err  error // why the body stopped, replied as is
}

func (c *content) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	if err != nil && err != io.EOF {
		c.h.log.Info("stream content failed", "name", c.l.name, "offset", c.l.offset.Load(), "err", err)
		c.err = contentFailure(err)
		return n, c.err
	}
	return n, err
}

// contentFailure is what a failed read of a stream's content is replied
// as: what happened, not the connection's details, which the log has.
func contentFailure(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errStalled
	}
	return errEndedEarly
}

// finish ends a complete stream: the processor sees the end, the file
// takes its name, and the last reply says what was stored. A stream that
// cannot be finished is replied an error (the log has the details) and
// dropped.
func (h *Handler) finish(l *live, hold *resumable.Hold) error {
	if err := h.seal(l, hold); err != nil {
		h.log.Error("stream finish", "name", l.name, "err", err)
		why := errStore
		if errors.Is(err, fs.ErrExist) {
			why = fmt.Errorf("%w: its name %q was taken while it was in progress", errStore, l.name)
		}
		l.emit(errorReply{Type: "error", Error: why.Error()})
		h.drop(l, why, hold)
		return why
	}
	l.setDone()
	if err := atomicfile.SyncDir(h.cfg.Dir); err != nil {
		h.log.Warn("stream directory not synced", "name", l.name, "err", err)
	}
	h.forget(l)
	l.emit(doneReply{Type: "done", Name: l.name, Bytes: l.offset.Load(), SHA256: hex.EncodeToString(l.sum.Sum(nil))})
	l.closeLog()
	h.log.Info("stream finished", "name", l.name, "bytes", l.offset.Load())
	return nil
}

// seal makes a complete stream's upload its bytes; the processor sees
// its end, and the upload's bytes take the stream's name.
func (h *Handler) seal(l *live, hold *resumable.Hold) error {
	info, err := hold.Complete()
	if err != nil {
		return err
	}
	l.endProcessor()
	if l.fed != info.Size || l.resent {
		// The client completed short of bytes it had sent, or sent some
		// again after the store had kept less than it read: the sum is
		// of what is stored. (The processor has seen what was fed.)
		if err := l.resum(context.Background(), hold.Upload()); err != nil {
			return err
		}
	}
	if err := h.publish(l); err != nil {
		return err
	}
	// The bytes stay, under the stream's name, and the storage goes on
	// counting what the upload did, as Usage counts the file.
	h.removeUpload(l, hold.Upload())
	return nil
}

// publish gives a finished stream's bytes the name Dir/<name>, which must
// be free: a stream never replaces a file it did not create, such as one
// put under its name while it was in progress.
func (h *Handler) publish(l *live) error {
	return linkNew(h.parts().DataPath(l.id), filepath.Join(h.cfg.Dir, l.name))
}

// linkNew gives the file at src the name final too, which must be free. A
// hard link cannot take a name in use; on a file system without them,
// the name is checked and src renamed to it.
func linkNew(src, final string) error {
	err := os.Link(src, final)
	switch {
	case err == nil, errors.Is(err, fs.ErrExist):
		return err
	}
	if _, err := os.Lstat(final); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stream: %s is taken: %w", final, fs.ErrExist)
	}
	return os.Rename(src, final)
}

// start registers a new stream and its processor, held by r.
func (h *Handler) start(name string, canResume bool, proc Processor, w http.ResponseWriter, r *http.Request) (*live, *resumable.Hold, error) {
	_, up, err := h.openStore()
	if err != nil {
		return nil, nil, err
	}
	client := h.cfg.ClientKey(r)
	h.mu.Lock()
	if _, busy := h.names[name]; busy {
		h.mu.Unlock()
		return nil, nil, errNameTaken
	}
	if h.maxStreams > 0 && len(h.byID) >= h.maxStreams {
		h.mu.Unlock()
		return nil, nil, errTooMany
	}
	if h.perClient > 0 && h.clients[client] >= h.perClient {
		h.mu.Unlock()
		return nil, nil, errTooManyFromClient
	}
	// Nameless: a stream counts as its file will, its bytes and
	// store.RecordBytes; the handler knows its name.
	hold, err := up.Create(w, r, store.Info{SizeIsDeferred: true})
	if err != nil {
		h.mu.Unlock()
		return nil, nil, err
	}
	id := hold.Info().ID
	l := newLive(id, name, canResume)
	l.url = h.cfg.BasePath + name + "?upload=" + id
	l.client = client
	l.enter()
	h.byID[id] = l
	h.names[name] = l
	h.clients[client]++
	h.mu.Unlock()
	l.startProcessor(proc)
	h.log.Info("stream created", "name", name, "resumable", canResume, "remote", r.RemoteAddr)
	return l, hold, nil
}

// release ends a request's hold on l; an unfinished resumable stream
// expires unless another request comes in time.
func (h *Handler) release(l *live, hold *resumable.Hold) {
	// l first: once the upload is free, the next request may enter l,
	// and this release must not undo that.
	l.release(func() { h.drop(l, errExpired, nil) }, h.expiry)
	hold.Release()
}

// forget removes l from the maps.
func (h *Handler) forget(l *live) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byID[l.id] == l {
		delete(h.byID, l.id)
		if h.clients[l.client]--; h.clients[l.client] <= 0 {
			delete(h.clients, l.client)
		}
	}
	if h.names[l.name] == l {
		delete(h.names, l.name)
	}
}

// drop abandons l: the processor stops and its upload is terminated,
// which gives back the storage it held. hold is the caller's, if it holds
// l; otherwise a request still holding l is taken over first, so that
// what it read is counted before it is given back.
func (h *Handler) drop(l *live, why error, hold *resumable.Hold) {
	h.forget(l)
	if !l.abandon(why) {
		return
	}
	var err error
	if hold != nil {
		err = hold.Terminate()
	} else {
		err = h.uploads().Terminate(context.Background(), l.id)
	}
	if err != nil && !errors.Is(err, resumable.ErrNotFound) {
		h.log.Warn("stream upload not removed", "name", l.name, "id", l.id, "err", err)
	}
	h.log.Info("stream dropped", "name", l.name, "offset", l.offset.Load(), "why", why)
}

// removeUpload removes the upload of l, which has its bytes under l's
// name now, from the store.
func (h *Handler) removeUpload(l *live, up store.Upload) {
	if err := h.parts().Terminate(context.Background(), up); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.log.Warn("stream upload not removed", "name", l.name, "id", l.id, "err", err)
	}
}

// serveFinished serves a finished stream: the client's bytes, presented so
// that they never run as a page of this origin (see usercontent). A link in
// Dir is not followed out of it.
func (h *Handler) serveFinished(w http.ResponseWriter, r *http.Request, name string) {
	f, err := os.OpenInRoot(h.cfg.Dir, name)
	if err != nil {
		refuse(w, r, http.StatusNotFound, "no such stream")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		refuse(w, r, http.StatusNotFound, "no such stream")
		return
	}
	head := make([]byte, 512)
	n, _ := f.ReadAt(head, 0)
	usercontent.SetHeaders(w.Header(), usercontent.MediaType(name, head[:n]), name)
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// Replies the handler adds to the processor's.
type (
	storedReply struct {
		Type   string `json:"type"`
		Offset int64  `json:"offset"`
	}
	doneReply struct {
		Type   string `json:"type"`
		Name   string `json:"name"`
		Bytes  int64  `json:"bytes"`
		SHA256 string `json:"sha256"`
	}
	errorReply struct {
		Type  string `json:"type"`
		Error string `json:"error"`
	}
)

// refuse answers r with an RFC 9457 problem that has a title only.
func refuse(w http.ResponseWriter, r *http.Request, status int, title string) {
	problem.Write(w, r, problem.Details{Title: title, Status: status})
}
