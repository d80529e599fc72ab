package resumable

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/dialect"
	"github.com/ferryhq/ferry/internal/sfv"
	"github.com/ferryhq/ferry/server/store"
)

// Defaults for the zero values of Config.
const (
	DefaultBasePath        = "/files/"
	DefaultExpiry          = 24 * time.Hour
	DefaultStallTimeout    = 10 * time.Second
	DefaultCheckpointBytes = 16 << 20
	DefaultMaxPartials     = 1000
	DefaultCreationBurst   = 100
)

// StatusUploadResumptionSupported is the draft's interim status: 104
// (Upload Resumption Supported).
const StatusUploadResumptionSupported = 104

// maxProgress bounds the 104 progress responses of one request: clients
// such as Go's count interim responses against their header size limit.
const maxProgress = 1000

// Config configures a Handler. The zero value of every field but Store is
// usable. What 0 and negative values mean is said field by field: unlike
// server.Config's limits, where 0 is always the default and negative off,
// some limits here are off at 0 (MaxSize, MaxStorage, CreationRate).
type Config struct {
	// Store keeps the uploads. Required. The handler advertises and uses
	// what the store's optional capabilities allow (see package store).
	Store store.Store
	// BasePath is where uploads live: POST BasePath creates one, and
	// BasePath<id> is its URL. It starts and ends with "/". Default
	// "/files/".
	BasePath string
	// MaxSize is the largest upload accepted, in bytes (Tus-Max-Size, the
	// draft's max-size limit). Zero or negative means no limit but the
	// largest structured-field Integer, sfv.MaxInteger (about a
	// petabyte), which bounds every length in both dialects so that each
	// one the handler reports is one a draft client can parse.
	MaxSize int64
	// Expiry is how long an unfinished upload may go without new bytes
	// before it is deleted; partial uploads of a concatenation expire
	// likewise even when finished. Zero means DefaultExpiry; negative
	// means never. Uploads are cleaned by a janitor when the store is a
	// store.Lister and a store.Terminater.
	Expiry time.Duration
	// StallTimeout is how long a request's content may go without a byte
	// before a newer request for the same upload takes the upload over.
	// Zero means DefaultStallTimeout; negative means never (the stalled
	// request keeps the upload until its read fails).
	StallTimeout time.Duration
	// LockTimeout is how long a request waits for an upload another
	// request holds before it gets 423 Locked. Zero or negative means
	// StallTimeout (DefaultStallTimeout when that is never) plus 3s,
	// enough for a stalled holder to be taken over.
	LockTimeout time.Duration
	// CheckpointBytes is how much content the handler appends between
	// durable checkpoints within one request; draft clients (interop 5
	// and later) get a 104 interim response with the durable offset after
	// each. Zero or negative means DefaultCheckpointBytes.
	CheckpointBytes int64
	// TempDir holds chunks being checked against a checksum when the store
	// cannot append all or nothing itself (store.AtomicWriter). Empty
	// means os.TempDir().
	TempDir string
	// Logger logs uploads created, finished, taken over and failed. Nil
	// discards.
	Logger *slog.Logger
	// MaxStorage bounds the bytes the store holds, in uploads finished or
	// not, each counted by store.Footprint (its bytes and a record of
	// about 4 KiB). A creation, append, concatenation or form file that
	// would pass it gets 507 (Insufficient Storage); the bytes of an
	// append that fit are kept. The count is measured from the store by
	// New, which then needs a store.Lister, and kept current by the
	// handler: a store shared with another handler is counted by each as
	// if it alone changed it. Zero or negative means no limit.
	MaxStorage int64
	// Room, if set, says how many more bytes the store's medium may take
	// now (for files: the file system's free space less what is kept back
	// for the system). A creation, append or form file past it gets 507
	// as past MaxStorage. It is asked at most every 250 ms, and what is
	// taken meanwhile is subtracted, so space freed on the medium is
	// usable at once and others filling it are seen.
	Room func() (int64, bool)
	// Storage, if set, counts what the store holds instead of a meter New
	// makes from MaxStorage and Room, which must then be unset: share one
	// with what else draws on the same storage, such as a stream.Handler
	// whose Dir is on the same file system. Its count starts where its
	// maker put it (see store.MeasureUsage); New does not measure.
	Storage *store.Meter
	// CreationRate is how many uploads one client may create a second,
	// once it has used its CreationBurst; a creation past that gets 429
	// with Retry-After. A client is an IP address, or the /64 network of
	// an IPv6 one; behind a proxy all clients are the proxy. POST
	// creations and each file of a multipart/form-data request count.
	// Zero or negative means no limit.
	CreationRate float64
	// CreationBurst is how many uploads a client may create at once.
	// Zero or negative means DefaultCreationBurst.
	CreationBurst int
	// MaxPartials is the most partial uploads one final upload may name
	// (tus concatenation); each may be named only once. Zero or negative
	// means DefaultMaxPartials.
	MaxPartials int
	// Now is the handler's clock, for expiry and rate limits. Stores stamp
	// uploads with time.Now, so a clock of your own should start there.
	// Nil means time.Now.
	Now func() time.Time
}

// Handler serves resumable uploads: tus 1.0.0 and the IETF draft on the
// same store and URLs, plus downloads of finished uploads and
// multipart/form-data uploads. It is safe for concurrent use. Use it
// routed (ServeHTTP) or mount its methods on a router of your own
// (PostFile, HeadFile, PatchFile, DelFile, GetFile, Options, PostForm).
type Handler struct {
	store  store.Store
	term   store.Terminater
	decl   store.LengthDeclarer
	concat store.Concater
	lister store.Lister
	atomic store.AtomicWriter
	locker store.Locker

	basePath     string
	maxSize      int64         // as configured and advertised; 0: none (see sizeLimit)
	expiry       time.Duration // ≤ 0: never
	stallTimeout time.Duration // < 0: never
	lockTimeout  time.Duration
	segment      int64
	tempDir      string
	log          *slog.Logger
	extensions   string
	maxPartials  int
	now          func() time.Time

	active sync.Map // upload ID → *claim held in this process

	waiting waitList // final uploads waiting for partial ones

	storage  *store.Meter     // nil: no MaxStorage, Room or Storage
	creation *creationLimiter // nil: no CreationRate

	stopJanitor context.CancelFunc
	janitorDone chan struct{}
}

// New returns a Handler for cfg and starts its janitor when uploads can
// expire. Call Close when done.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("resumable: Config.Store is required")
	}
	h := &Handler{
		store:        cfg.Store,
		basePath:     cfg.BasePath,
		maxSize:      min(max(cfg.MaxSize, 0), sfv.MaxInteger),
		expiry:       cfg.Expiry,
		stallTimeout: cfg.StallTimeout,
		lockTimeout:  cfg.LockTimeout,
		segment:      cfg.CheckpointBytes,
		tempDir:      cfg.TempDir,
		log:          cfg.Logger,
		maxPartials:  cfg.MaxPartials,
		now:          cfg.Now,
	}
	if h.maxPartials <= 0 {
		h.maxPartials = DefaultMaxPartials
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.basePath == "" {
		h.basePath = DefaultBasePath
	}
	if !strings.HasPrefix(h.basePath, "/") || !strings.HasSuffix(h.basePath, "/") {
		return nil, fmt.Errorf("resumable: BasePath %q must start and end with /", h.basePath)
	}
	if h.expiry == 0 {
		h.expiry = DefaultExpiry
	}
	if h.stallTimeout == 0 {
		h.stallTimeout = DefaultStallTimeout
	}
	if h.lockTimeout <= 0 {
		stall := h.stallTimeout
		if stall < 0 {
			stall = DefaultStallTimeout
		}
		h.lockTimeout = stall + 3*time.Second
	}
	if h.segment <= 0 {
		h.segment = DefaultCheckpointBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	burst := cfg.CreationBurst
	if burst <= 0 {
		burst = DefaultCreationBurst
	}
	h.creation = newCreationLimiter(cfg.CreationRate, burst, h.now)
	storage, err := h.newStorage(cfg)
	if err != nil {
		return nil, err
	}
	h.storage = storage
	h.term, _ = cfg.Store.(store.Terminater)
	h.decl, _ = cfg.Store.(store.LengthDeclarer)
	h.concat, _ = cfg.Store.(store.Concater)
	h.lister, _ = cfg.Store.(store.Lister)
	h.atomic, _ = cfg.Store.(store.AtomicWriter)
	if l, ok := cfg.Store.(store.Locker); ok {
		h.locker = l
	} else {
		h.locker = &store.MemoryLocker{}
	}

	ext := []string{"creation", "creation-with-upload"}
	if h.decl != nil {
		ext = append(ext, "creation-defer-length")
	}
	if h.term != nil {
		ext = append(ext, "termination")
	}
	ext = append(ext, "checksum")
	if h.expiry > 0 {
		ext = append(ext, "expiration")
	}
	if h.concat != nil {
		ext = append(ext, "concatenation", "concatenation-unfinished")
	}
	h.extensions = strings.Join(ext, ",")

	ctx, stop := context.WithCancel(context.Background())
	h.stopJanitor = stop
	h.janitorDone = make(chan struct{})
	if h.expiry > 0 && h.lister != nil && h.term != nil {
		go h.janitor(ctx)
	} else {
		close(h.janitorDone)
	}
	return h, nil
}

// newStorage returns the meter of what the store holds: cfg.Storage, or
// one of cfg.MaxStorage and cfg.Room, counted from the store; nil for no
// limit.
func (h *Handler) newStorage(cfg Config) (*store.Meter, error) {
	if cfg.Storage != nil {
		if cfg.MaxStorage != 0 || cfg.Room != nil {
			return nil, errors.New("resumable: Config.Storage replaces MaxStorage and Room: set one or the others")
		}
		return cfg.Storage, nil
	}
	if cfg.MaxStorage <= 0 && cfg.Room == nil {
		return nil, nil
	}
	var used int64
	if cfg.MaxStorage > 0 {
		n, bytes, err := store.MeasureUsage(context.Background(), cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("resumable: Config.MaxStorage: %w", err)
		}
		used = bytes
		h.log.Info("upload storage", "uploads", n, "bytes", used, "max", cfg.MaxStorage)
	}
	return store.NewMeter(store.MeterConfig{Max: cfg.MaxStorage, Used: used, Room: cfg.Room, Now: h.now}), nil
}

// sizeLimit is the largest upload enforced: MaxSize, or without one the
// largest length a draft client can parse.
func (h *Handler) sizeLimit() int64 { return cmp.Or(h.maxSize, sfv.MaxInteger) }

// Extensions returns the tus extensions the handler supports, as sent in
// Tus-Extension.
func (h *Handler) Extensions() string { return h.extensions }

// Close stops the janitor. Requests still running are not interrupted.
func (h *Handler) Close() error {
	h.stopJanitor()
	<-h.janitorDone
	return nil
}

// ServeHTTP routes a request below BasePath:
//
//	POST    BasePath        create an upload (tus or draft)
//	OPTIONS BasePath[<id>]  capabilities
//	HEAD    BasePath<id>    offset retrieval
//	PATCH   BasePath<id>    append
//	DELETE  BasePath<id>    terminate
//	GET     BasePath<id>    download the finished upload
//
// POST with X-HTTP-Method-Override acts as the method it names, for
// clients that cannot send PATCH or DELETE.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := r.Header.Get("X-HTTP-Method-Override"); r.Method == http.MethodPost && m != "" {
		r.Method = strings.ToUpper(m)
	}
	p := r.URL.Path
	if p == h.basePath || p+"/" == h.basePath {
		switch r.Method {
		case http.MethodPost:
			h.PostFile(w, r)
		case http.MethodOptions:
			h.Options(w, r)
		default:
			w.Header().Set("Allow", "POST, OPTIONS")
			writeProblem(w, r, ErrMethodNotAllowed)
		}
		return
	}
	id, ok := strings.CutPrefix(p, h.basePath)
	if !ok || id == "" || strings.Contains(id, "/") {
		writeProblem(w, r, ErrNotFound)
		return
	}
	switch r.Method {
	case http.MethodHead:
		h.HeadFile(w, r)
	case http.MethodPatch:
		h.PatchFile(w, r)
	case http.MethodDelete:
		h.DelFile(w, r)
	case http.MethodGet:
		h.GetFile(w, r)
	case http.MethodOptions:
		h.Options(w, r)
	default:
		w.Header().Set("Allow", "GET, HEAD, PATCH, DELETE, OPTIONS")
		writeProblem(w, r, ErrMethodNotAllowed)
	}
}

// Headers clients may send and read across origins.
const (
	corsAllowHeaders  = "Authorization, Content-Type, Content-Disposition, Content-Digest, Repr-Digest, Upload-Offset, Upload-Length, Upload-Defer-Length, Upload-Metadata, Upload-Concat, Upload-Checksum, Upload-Complete, Upload-Incomplete, Upload-Draft-Interop-Version, Tus-Resumable, X-HTTP-Method-Override, X-Requested-With"
	corsExposeHeaders = "Location, Upload-Offset, Upload-Length, Upload-Defer-Length, Upload-Metadata, Upload-Concat, Upload-Expires, Upload-Complete, Upload-Incomplete, Upload-Limit, Upload-Draft-Interop-Version, Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm, Content-Disposition"
)

// start does what every request needs first: common headers, CORS, the
// dialect, and the tus version check (412 with Tus-Version when the
// client's Tus-Resumable is not 1.0.0; GET, OPTIONS and a HEAD without the
// header are exempt). It reports false when it has answered already.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) (dialect.Dialect, bool) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	if origin := r.Header.Get("Origin"); origin != "" {
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			hd.Set("Access-Control-Allow-Methods", "POST, GET, HEAD, PATCH, DELETE, OPTIONS")
			hd.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			hd.Set("Access-Control-Max-Age", "86400")
		} else {
			hd.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
	}
	d, e := detect(r)
	if e != nil {
		hd.Set("Upload-Draft-Interop-Version", strconv.Itoa(LatestInterop))
		writeProblem(w, r, e)
		return d, false
	}
	if d.IETF() {
		hd.Set("Upload-Draft-Interop-Version", strconv.Itoa(d.Interop))
		return d, true
	}
	hd.Set("Tus-Resumable", TusVersion)
	v := dialect.Field(r, "Tus-Resumable")
	switch r.Method {
	case http.MethodGet, http.MethodOptions:
		return d, true
	case http.MethodHead:
		if v == "" {
			return d, true
		}
	}
	if v != TusVersion {
		hd.Set("Tus-Version", TusVersion)
		writeProblem(w, r, ErrUnsupportedVersion.with("Tus-Resumable %q", v))
		return d, false
	}
	return d, true
}

// allowCreation takes one upload creation from the allowance of r's
// client (Config.CreationRate). When none is left it sets Retry-After and
// returns the error to answer with.
func (h *Handler) allowCreation(w http.ResponseWriter, r *http.Request) *Error {
	ok, wait := h.AllowCreation(r)
	if ok {
		return nil
	}
	secs := max(int64(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return ErrTooManyUploads.with("this client may create %g uploads a second; retry in %d s", h.creation.rate, secs)
}

// AllowCreation takes one creation from the allowance of r's client
// (Config.CreationRate and CreationBurst), as creating an upload does, and
// reports whether there was one left and, if not, how long until there
// is. It is for what else a client creates that should draw on the same
// allowance, such as live streams (stream.Config.CreationLimit).
func (h *Handler) AllowCreation(r *http.Request) (ok bool, retryAfter time.Duration) {
	return h.creation.allow(r)
}

// fail answers with the error err maps to, logging server failures.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e, client := toError(err)
	if !client {
		h.log.Error("upload request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else if e.Status >= 500 || errors.Is(e, ErrInterrupted) || errors.Is(e, ErrBodyRead) || errors.Is(e, ErrBodyTimeout) {
		h.log.Info("upload request ended early", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeProblem(w, r, e)
}

// url is the absolute URL of upload id, as the client reached this server.
func (h *Handler) url(r *http.Request, id string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + h.basePath + id
}

// id returns the upload ID in r's path.
func (h *Handler) id(r *http.Request) string {
	id, _ := strings.CutPrefix(r.URL.Path, h.basePath)
	return id
}

// setExpires sets tus's Upload-Expires (an HTTP-date) for an upload that
// can expire.
func (h *Handler) setExpires(hd http.Header, info store.Info) {
	if h.expiry > 0 && expires(info) {
		hd.Set("Upload-Expires", info.UpdatedAt.Add(h.expiry).UTC().Format(http.TimeFormat))
	}
}

// setLimits sets the draft's Upload-Limit, when anything limits the upload.
func (h *Handler) setLimits(hd http.Header, d dialect.Dialect, info *store.Info) {
	if l := limits(d, h.maxSize, h.expiry, info, h.now()); l != "" {
		hd.Set("Upload-Limit", l)
	}
}

// Options answers OPTIONS with what the server supports, for both
// dialects: Tus-Version, Tus-Extension, Tus-Max-Size and
// Tus-Checksum-Algorithm for tus; Accept-Patch and Upload-Limit for the
// draft.
func (h *Handler) Options(w http.ResponseWriter, r *http.Request) {
	d, ok := h.start(w, r)
	if !ok {
		return
	}
	hd := w.Header()
	hd.Set("Tus-Resumable", TusVersion)
	hd.Set("Tus-Version", TusVersion)
	hd.Set("Tus-Extension", h.extensions)
	hd.Set("Tus-Checksum-Algorithm", checksumNames())
	if h.maxSize > 0 {
		hd.Set("Tus-Max-Size", strconv.FormatInt(h.maxSize, 10))
	}
	hd.Set("Accept-Patch", dialect.PartialUpload+", "+dialect.TusChunk)
	if !d.IETF() {
		d = dialect.Dialect{Interop: dialect.Latest}
	}
	h.setLimits(hd, d, nil)
	if r.URL.Path == h.basePath || r.URL.Path+"/" == h.basePath {
		hd.Set("Allow", "POST, OPTIONS")
	} else {
		hd.Set("Allow", "GET, HEAD, PATCH, DELETE, OPTIONS")
	}
	w.WriteHeader(http.StatusNoContent)
}

// PostFile creates an upload, with content or without.
//
// tus (creation, creation-with-upload, creation-defer-length,
// concatenation): Upload-Length or Upload-Defer-Length: 1, Upload-Metadata,
// Upload-Concat; content when Content-Type is application/offset+octet-stream.
// 201 with Location.
//
// Draft: Upload-Complete (interop 3: Upload-Incomplete), Upload-Length,
// Content-Disposition, Content-Type; the content, if any, is the start of
// the representation. A 104 (Upload Resumption Supported) interim response
// with Location (and Upload-Limit from interop 6) goes out before the
// content is read. Upload-Metadata and Upload-Concat are accepted as in
// tus, so tus-js-client's parallel uploads work in its draft modes too.
func (h *Handler) PostFile(w http.ResponseWriter, r *http.Request) {
	d, ok := h.start(w, r)
	if !ok {
		return
	}
	if e := h.allowCreation(w, r); e != nil {
		writeProblem(w, r, e)
		return
	}
	spec, e := h.parseConcat(r)
	if e != nil {
		writeProblem(w, r, e)
		return
	}
	metaField := dialect.Field(r, "Upload-Metadata")
	if len(metaField) > MaxMetadataBytes {
		writeProblem(w, r, ErrInvalidMetadata.with("%d bytes; at most %d", len(metaField), MaxMetadataBytes))
		return
	}
	meta, err := ParseMetadata(metaField)
	if err != nil {
		writeProblem(w, r, ErrInvalidMetadata.with("%v", err))
		return
	}
	repr, e := parseReprDigest(r.Header.Values("Repr-Digest"))
	if e != nil {
		writeProblem(w, r, e)
		return
	}
	info := store.Info{ID: store.NewID(), MetaData: meta, IsPartial: spec.partial, ReprDigest: repr}
	if len(meta) == 0 {
		info.MetaData = nil
	}

	var hasBody, complete bool
	if d.IETF() {
		hasBody = r.ContentLength != 0
		var ok bool
		if complete, ok = d.RequestComplete(r); !ok {
			writeProblem(w, r, ErrInvalidComplete.with("%q", r.Header.Values("Upload-Complete")))
			return
		}
		if e := h.draftCreationInfo(r, d, complete, spec.final, &info); e != nil {
			h.creationError(w, r, d, e)
			return
		}
	} else {
		hasBody = dialect.MediaType(r.Header.Get("Content-Type")) == dialect.TusChunk
		if e := h.tusCreationInfo(r, spec.final, &info); e != nil {
			writeProblem(w, r, e)
			return
		}
	}
	if !spec.final && !info.SizeIsDeferred && hasBody && r.ContentLength > info.Size {
		if d.IETF() {
			writeProblem(w, r, ErrInconsistentLength.with("%d bytes of content for an upload of %d", r.ContentLength, info.Size))
		} else {
			writeProblem(w, r, ErrSizeExceeded.with("%d bytes of content for an upload of %d", r.ContentLength, info.Size))
		}
		return
	}
	if spec.final {
		if hasBody {
			writeProblem(w, r, ErrModifyFinal.with("a final upload is made of its partial uploads"))
			return
		}
		if h.concat == nil {
			writeProblem(w, r, ErrNotImplemented.with("concatenation"))
			return
		}
		if e := h.finalInfo(r.Context(), spec.ids, &info); e != nil {
			h.creationError(w, r, d, e)
			return
		}
	}
	if info.Name == "" && meta["filename"] != "" {
		info.Name = SanitizeFileName(meta["filename"])
	}
	if info.Name == "" && !d.IETF() {
		name, e := dispositionName(r)
		if e != nil {
			writeProblem(w, r, e)
			return
		}
		info.Name = name
	}
	if info.ContentType == "" {
		info.ContentType = validMediaType(meta["filetype"])
	}

	up, info, err := h.newUpload(r.Context(), info)
	if err != nil {
		if e, ok := err.(*Error); ok {
			h.creationError(w, r, d, e)
		} else {
			h.fail(w, r, err)
		}
		return
	}
	hd := w.Header()
	hd.Set("Location", h.url(r, info.ID))
	h.log.Info("upload created", "id", info.ID, "size", info.Size, "deferred", info.SizeIsDeferred,
		"partial", info.IsPartial, "final", info.IsFinal, "name", info.Name, "draft", d.Interop)
	if d.IETF() {
		h.setLimits(hd, d, &info)
		// The draft's feature detection: the client learns where to
		// resume before it sends a byte (RFC 9110 §15.2 interim response).
		if r.ProtoAtLeast(1, 1) {
			w.WriteHeader(StatusUploadResumptionSupported)
		}
	}

	if spec.final {
		info, e = h.completeFinal(r.Context(), up, info)
		if e != nil {
			writeProblem(w, r, e)
			return
		}
		h.created(w, r, d, info, false)
		return
	}
	if hasBody {
		c, e := h.claim(w, r, info.ID, false)
		if e != nil {
			writeProblem(w, r, e)
			return
		}
		defer c.release()
		info, err = h.appendContent(w, r, d, c, up, info)
		if err != nil {
			h.failAfterWrite(w, r, d, info, err)
			return
		}
	}
	if d.IETF() && complete && !info.Finished() {
		if info, err = h.completeNow(r.Context(), up, info); err != nil {
			h.failAfterWrite(w, r, d, info, err)
			return
		}
	}
	if info.Finished() {
		if err := h.finish(r.Context(), up, info); err != nil {
			h.failAfterWrite(w, r, d, info, err)
			return
		}
	}
	h.created(w, r, d, info, hasBody)
}

// created sends 201 for a new upload.
func (h *Handler) created(w http.ResponseWriter, r *http.Request, d dialect.Dialect, info store.Info, wrote bool) {
	hd := w.Header()
	if d.IETF() {
		hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
		d.SetComplete(hd, info.Finished())
		h.setLimits(hd, d, &info)
	} else {
		if wrote {
			hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
		}
		h.setExpires(hd, info)
	}
	w.WriteHeader(http.StatusCreated)
}

// creationError answers a failed creation; a draft 413 names the limits.
func (h *Handler) creationError(w http.ResponseWriter, r *http.Request, d dialect.Dialect, e *Error) {
	if d.IETF() && e.Status == http.StatusRequestEntityTooLarge {
		h.setLimits(w.Header(), d, nil)
	}
	writeProblem(w, r, e)
}

// tusCreationInfo reads the tus creation fields into info.
func (h *Handler) tusCreationInfo(r *http.Request, final bool, info *store.Info) *Error {
	if final {
		return nil // the partials give the length
	}
	length, deferLength := dialect.Field(r, "Upload-Length"), dialect.Field(r, "Upload-Defer-Length")
	switch {
	case length != "" && deferLength != "":
		return ErrAmbiguousLength.with("Upload-Length %q, Upload-Defer-Length %q", length, deferLength)
	case deferLength != "":
		if deferLength != "1" {
			return ErrInvalidDefer.with("%q", deferLength)
		}
		if h.decl == nil {
			return ErrNotImplemented.with("creation-defer-length")
		}
		info.SizeIsDeferred = true
	default:
		n, ok := dialect.ParseDecimal(length)
		if !ok {
			return ErrInvalidLength.with("Upload-Length %q", length)
		}
		if n > h.sizeLimit() {
			return ErrMaxSizeExceeded.with("%d bytes; the limit is %d", n, h.sizeLimit())
		}
		info.Size = n
	}
	return nil
}

// draftCreationInfo reads the draft's creation fields into info: the
// length from Upload-Length and from Content-Length with Upload-Complete:
// ?1, which must agree; the name from Content-Disposition; the media type.
func (h *Handler) draftCreationInfo(r *http.Request, d dialect.Dialect, complete, final bool, info *store.Info) *Error {
	length := int64(-1)
	if n, ok := dialect.RequestLength(r); ok {
		length = n
	}
	if complete && r.ContentLength >= 0 {
		if length >= 0 && length != r.ContentLength {
			return ErrInconsistentLength.with("Upload-Length %d, content %d bytes", length, r.ContentLength)
		}
		length = r.ContentLength
	}
	if final {
		length = -1 // the partials give the length
	}
	if length < 0 {
		if h.decl == nil {
			return ErrNotImplemented.with("uploads of unknown length")
		}
		info.SizeIsDeferred = true
	} else {
		if length > h.sizeLimit() {
			return ErrMaxSizeExceeded.with("%d bytes; the limit is %d", length, h.sizeLimit())
		}
		info.Size = length
	}
	name, e := dispositionName(r)
	if e != nil {
		return e
	}
	info.Name = name
	if ct := dialect.MediaType(r.Header.Get("Content-Type")); ct != dialect.PartialUpload && ct != dialect.TusChunk {
		info.ContentType = validMediaType(r.Header.Get("Content-Type"))
	}
	return nil
}

// dispositionName returns the sanitised file name in r's
// Content-Disposition (RFC 6266: filename, or filename* which wins), or ""
// when there is none.
func dispositionName(r *http.Request) (string, *Error) {
	cd := r.Header.Get("Content-Disposition")
	if cd == "" {
		return "", nil
	}
	_, params, err := mime.ParseMediaType(cd)
	if err != nil {
		return "", ErrInvalidDisposition.with("%v", err)
	}
	if name := params["filename"]; name != "" {
		return SanitizeFileName(name), nil
	}
	return "", nil
}

// validMediaType returns ct if it parses as a media type, else "".
func validMediaType(ct string) string {
	if ct == "" {
		return ""
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return ""
	}
	return ct
}

// open claims the upload r names and reads it; ok is false once it has
// answered r with why it could not. The caller releases c.
func (h *Handler) open(w http.ResponseWriter, r *http.Request) (c *claim, up store.Upload, info store.Info, ok bool) {
	c, e := h.claim(w, r, h.id(r), false)
	if e != nil {
		writeProblem(w, r, e)
		return nil, nil, info, false
	}
	o, err := h.held(c)
	if err != nil {
		c.release()
		h.fail(w, r, err)
		return nil, nil, info, false
	}
	return c, o.up, o.info, true
}

// HeadFile answers offset retrieval. tus: 200 with Upload-Offset,
// Upload-Length or Upload-Defer-Length, Upload-Metadata, Upload-Concat and
// Upload-Expires. Draft: 204 with Upload-Offset, Upload-Complete (interop
// 3: Upload-Incomplete), Upload-Length when known and Upload-Limit (from
// interop 6). Both: Cache-Control: no-store.
//
// HEAD takes the upload's lock like an append: the offset it reports is
// durable and no request is still adding to it, so an append at that
// offset is accepted (draft § Concurrency). A stalled request is taken
// over first.
func (h *Handler) HeadFile(w http.ResponseWriter, r *http.Request) {
	d, ok := h.start(w, r)
	if !ok {
		return
	}
	c, up, info, ok := h.open(w, r)
	if !ok {
		return
	}
	defer c.release()
	if info.IsFinal && !info.Finished() {
		var e *Error
		if info, e = h.tryConcat(c.ctx, up, info); e != nil {
			writeProblem(w, r, e)
			return
		}
	}
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	if d.IETF() {
		hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
		d.SetComplete(hd, info.Finished())
		if !info.SizeIsDeferred {
			hd.Set("Upload-Length", strconv.FormatInt(info.Size, 10))
		}
		h.setLimits(hd, d, &info)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if info.IsPartial {
		hd.Set("Upload-Concat", "partial")
	}
	pendingFinal := info.IsFinal && !info.Finished()
	if info.IsFinal {
		urls := make([]string, len(info.PartialUploads))
		for i, p := range info.PartialUploads {
			urls[i] = h.url(r, p)
		}
		hd.Set("Upload-Concat", "final;"+strings.Join(urls, " "))
	}
	// A final upload whose partials are not all finished has no offset
	// yet (tus concatenation-unfinished).
	if !pendingFinal {
		hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
	}
	if !info.SizeIsDeferred {
		hd.Set("Upload-Length", strconv.FormatInt(info.Size, 10))
	} else if !pendingFinal {
		hd.Set("Upload-Defer-Length", "1")
	}
	if len(info.MetaData) > 0 {
		hd.Set("Upload-Metadata", FormatMetadata(info.MetaData))
	}
	h.setExpires(hd, info)
	w.WriteHeader(http.StatusOK)
}

// PatchFile appends content at Upload-Offset.
//
// tus: Content-Type application/offset+octet-stream (415 otherwise),
// Upload-Length to declare a deferred length, Upload-Checksum. Draft:
// Content-Type application/partial-upload from interop 6 (before, any),
// Upload-Complete, Upload-Length, Content-Digest.
//
// A wrong Upload-Offset gets 409 with the current offset (draft: a
// mismatching-upload-offset problem). Content checked by a checksum or
// digest is appended all or nothing (tus: 460 on a mismatch); other content
// is appended as it arrives and made durable every CheckpointBytes, so an
// interrupted request keeps what it delivered.
func (h *Handler) PatchFile(w http.ResponseWriter, r *http.Request) {
	d, ok := h.start(w, r)
	if !ok {
		return
	}
	ct := dialect.MediaType(r.Header.Get("Content-Type"))
	switch {
	case !d.IETF() && ct != dialect.TusChunk:
		writeProblem(w, r, ErrContentType.with("tus PATCH needs %s, not %q", dialect.TusChunk, ct))
		return
	case d.Interop >= dialect.Interop6 && ct != dialect.PartialUpload:
		writeProblem(w, r, ErrContentType.with("append needs %s, not %q", dialect.PartialUpload, ct))
		return
	}
	offset, ok := d.RequestOffset(r)
	if !ok {
		writeProblem(w, r, ErrInvalidOffset.with("%q", dialect.Field(r, "Upload-Offset")))
		return
	}
	complete, ok := d.RequestComplete(r)
	if !ok {
		writeProblem(w, r, ErrInvalidComplete.with("%q", r.Header.Values("Upload-Complete")))
		return
	}
	if r.ContentLength > h.sizeLimit() {
		h.creationError(w, r, d, ErrMaxSizeExceeded.with("%d bytes of content; the limit is %d", r.ContentLength, h.sizeLimit()))
		return
	}
	declared := int64(-1)
	if d.IETF() {
		if n, ok := dialect.RequestLength(r); ok {
			declared = n
		}
		if complete && r.ContentLength >= 0 {
			if n := offset + r.ContentLength; declared >= 0 && declared != n {
				writeProblem(w, r, ErrInconsistentLength.with("Upload-Length %d, but offset %d plus %d bytes of content is %d", declared, offset, r.ContentLength, n))
				return
			} else {
				declared = n
			}
		}
	} else if v := dialect.Field(r, "Upload-Length"); v != "" {
		n, ok := dialect.ParseDecimal(v)
		if !ok {
			writeProblem(w, r, ErrInvalidLength.with("Upload-Length %q", v))
			return
		}
		declared = n
	}
	if _, e := chunkVerifier(r); e != nil {
		writeProblem(w, r, e)
		return
	}

	c, up, info, ok := h.open(w, r)
	if !ok {
		return
	}
	defer c.release()
	hd := w.Header()
	if info.IsFinal {
		writeProblem(w, r, ErrModifyFinal.with("upload %s is the concatenation of %d partial uploads", info.ID, len(info.PartialUploads)))
		return
	}
	if offset != info.Offset {
		h.mismatch(w, r, d, info, offset)
		return
	}
	if info.Finished() && (declared < 0 || declared == info.Size) {
		if r.ContentLength == 0 {
			h.appended(w, d, info) // nothing to add: the upload is complete
			return
		}
		hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
		if d.IETF() {
			d.SetComplete(hd, true)
			writeProblem(w, r, ErrCompleted.with("upload %s is complete at %d bytes", info.ID, info.Size))
		} else {
			writeProblem(w, r, ErrSizeExceeded.with("the upload is complete at %d bytes", info.Size))
		}
		return
	}
	if declared >= 0 {
		switch {
		case !info.SizeIsDeferred && declared != info.Size:
			writeProblem(w, r, ErrInconsistentLength.with("length %d, the upload's is %d", declared, info.Size))
			return
		case info.SizeIsDeferred:
			if declared < info.Offset {
				writeProblem(w, r, ErrInconsistentLength.with("length %d is below the offset %d", declared, info.Offset))
				return
			}
			if declared > h.sizeLimit() {
				h.creationError(w, r, d, ErrMaxSizeExceeded.with("%d bytes; the limit is %d", declared, h.sizeLimit()))
				return
			}
			if h.decl == nil {
				writeProblem(w, r, ErrNotImplemented.with("creation-defer-length"))
				return
			}
			if err := h.decl.DeclareLength(c.ctx, up, declared); err != nil {
				h.fail(w, r, err)
				return
			}
			info.Size, info.SizeIsDeferred = declared, false
		}
	}
	switch {
	case !info.SizeIsDeferred && r.ContentLength > info.Size-info.Offset:
		hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
		h.creationError(w, r, d, ErrSizeExceeded.with("%d bytes at offset %d of %d", r.ContentLength, info.Offset, info.Size))
		return
	case info.SizeIsDeferred && r.ContentLength > h.sizeLimit()-info.Offset:
		hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
		h.creationError(w, r, d, ErrMaxSizeExceeded.with("%d bytes at offset %d; the limit is %d", r.ContentLength, info.Offset, h.sizeLimit()))
		return
	}
	if e := h.checkStorage(r.ContentLength); e != nil {
		hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
		writeProblem(w, r, e)
		return
	}

	info, err := h.appendContent(w, r, d, c, up, info)
	endedEarly := errors.Is(err, errEndedEarly)
	if endedEarly {
		// As tusd does: content that ended early is where this append
		// stopped, not a failure. What arrived is kept, and the answer is
		// the offset it reached, from which the client resumes (a client
		// that treats a 4xx as final, as tus-js-client does, would stop
		// instead). It does not complete the upload.
		h.log.Info("upload request ended early", "method", r.Method, "path", r.URL.Path, "offset", info.Offset, "err", err)
		err = nil
	}
	if err != nil {
		h.failAfterWrite(w, r, d, info, err)
		return
	}
	if d.IETF() && complete && !info.Finished() && !endedEarly {
		if info, err = h.completeNow(c.ctx, up, info); err != nil {
			h.failAfterWrite(w, r, d, info, err)
			return
		}
	}
	if info.Finished() {
		if err := h.finish(c.ctx, up, info); err != nil {
			h.failAfterWrite(w, r, d, info, err)
			return
		}
	}
	h.appended(w, d, info)
}

// appended sends 204 for a successful append.
func (h *Handler) appended(w http.ResponseWriter, d dialect.Dialect, info store.Info) {
	hd := w.Header()
	hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
	if d.IETF() {
		d.SetComplete(hd, info.Finished())
		if d.Interop == dialect.Interop6 {
			h.setLimits(hd, d, &info)
		}
	} else {
		h.setExpires(hd, info)
	}
	w.WriteHeader(http.StatusNoContent)
}

// mismatch answers an append at the wrong offset: 409 with the right one.
func (h *Handler) mismatch(w http.ResponseWriter, r *http.Request, d dialect.Dialect, info store.Info, provided int64) {
	hd := w.Header()
	hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
	if d.IETF() {
		d.SetComplete(hd, info.Finished())
	}
	writeProblem(w, r, MismatchedOffset(info.Offset, provided))
}

// failAfterWrite answers an append that failed part way, with the offset
// the upload durably reached.
func (h *Handler) failAfterWrite(w http.ResponseWriter, r *http.Request, d dialect.Dialect, info store.Info, err error) {
	hd := w.Header()
	hd.Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
	if d.IETF() {
		d.SetComplete(hd, info.Finished())
		if e, _ := toError(err); e.Status == http.StatusRequestEntityTooLarge {
			h.setLimits(hd, d, &info)
		}
	}
	h.fail(w, r, err)
}

// completeNow marks an upload complete at its current offset because the
// client said this request completes it (draft Upload-Complete: ?1).
func (h *Handler) completeNow(ctx context.Context, up store.Upload, info store.Info) (store.Info, error) {
	if !info.SizeIsDeferred {
		return info, ErrInconsistentLength.with("the request completes the upload at %d bytes, but its length is %d", info.Offset, info.Size)
	}
	if h.decl == nil {
		return info, ErrNotImplemented.with("uploads of unknown length")
	}
	if err := h.decl.DeclareLength(ctx, up, info.Offset); err != nil {
		return info, err
	}
	info.Size, info.SizeIsDeferred = info.Offset, false
	return info, nil
}

// appendContent appends r's content at info.Offset under claim c and
// returns the upload's new state, also when it fails.
func (h *Handler) appendContent(w http.ResponseWriter, r *http.Request, d dialect.Dialect, c *claim, up store.Upload, info store.Info) (store.Info, error) {
	v, e := chunkVerifier(r)
	if e != nil {
		return info, e
	}
	return h.appendFrom(c, up, info, r.Body, func(src io.Reader) (int64, error) {
		if v != nil {
			return h.writeAtomic(c.ctx, up, info.Offset, v.reader(src), v.check)
		}
		return h.writeSegments(c.ctx, w, r, d, up, info.Offset, src)
	})
}

// appendFrom appends content under claim c with write, which stores what
// it reads of src at info.Offset. src is content bounded by the upload's
// length (or the size limit), counted against the storage, and watched for
// stalls and takeovers. It returns the upload's new state, also when it
// fails.
func (h *Handler) appendFrom(c *claim, up store.Upload, info store.Info, content io.Reader, write func(src io.Reader) (int64, error)) (store.Info, error) {
	src := c.body(content)
	switch {
	case !info.SizeIsDeferred:
		src = &maxReader{r: src, n: info.Size - info.Offset, err: store.ErrSizeExceeded}
	default:
		src = &maxReader{r: src, n: h.sizeLimit() - info.Offset, err: errMaxSize}
	}
	counted := &storageReader{r: src, s: h.storage}
	c.lastRead.Store(time.Now().UnixNano())
	c.streaming.Store(true)
	n, err := write(counted)
	c.streaming.Store(false)
	h.storage.Release(counted.taken - n) // read, but not appended
	// The request's context may be done (client gone, taken over); the
	// state is read regardless.
	now, ierr := up.GetInfo(context.WithoutCancel(c.ctx))
	if ierr != nil {
		return info, errors.Join(err, ierr)
	}
	if errors.Is(err, errBodyRead) && !errors.Is(err, errBodyTimeout) {
		err = fmt.Errorf("%w: %w", errEndedEarly, err)
	}
	return now, err
}

// errEndedEarly marks an append whose content ended before its length, or
// whose connection failed, with what arrived stored.
var errEndedEarly = errors.New("resumable: the content ended early")

// writeSegments appends src in pieces of at most h.segment bytes, each
// durable when WriteChunk returns. Draft clients from interop 5 on get a
// 104 interim response with the durable offset after each piece but the
// last.
func (h *Handler) writeSegments(ctx context.Context, w http.ResponseWriter, r *http.Request, d dialect.Dialect, up store.Upload, offset int64, src io.Reader) (int64, error) {
	progress := d.Interop >= dialect.Interop5 && r.ProtoAtLeast(1, 1)
	sent := 0
	return store.Append(ctx, up, offset, src, store.Pieces{Bytes: h.segment}, func(durable int64) {
		if !progress || sent >= maxProgress {
			return
		}
		// An interim response carries the headers set so far; progress
		// gets Upload-Offset and, as in the draft's examples, no
		// Location (creation's first 104 had it).
		hd := w.Header()
		loc := hd.Values("Location")
		hd.Del("Location")
		hd.Set("Upload-Offset", strconv.FormatInt(durable, 10))
		w.WriteHeader(StatusUploadResumptionSupported)
		hd.Del("Upload-Offset")
		if loc != nil {
			hd["Location"] = loc
		}
		sent++
	})
}

// writeAtomic appends src all or nothing: only if check passes once src
// is drained. Stores that cannot do that themselves get the chunk spooled
// to a temporary file first.
func (h *Handler) writeAtomic(ctx context.Context, up store.Upload, offset int64, src io.Reader, check func() error) (int64, error) {
	if h.atomic != nil {
		return h.atomic.WriteChunkAtomic(ctx, up, offset, src, check)
	}
	f, err := os.CreateTemp(h.tempDir, "ferry-chunk-*")
	if err != nil {
		return 0, fmt.Errorf("resumable: spool chunk: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, src); err != nil {
		return 0, err
	}
	if err := check(); err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return up.WriteChunk(ctx, offset, f)
}

// errMaxSize is the error of content beyond Config.MaxSize.
var errMaxSize = errors.New("resumable: upload exceeds the maximum size")

// maxReader reads at most n bytes and fails with err if there are more.
type maxReader struct {
	r   io.Reader
	n   int64
	err error
}

func (m *maxReader) Read(p []byte) (int, error) {
	if m.n <= 0 {
		var one [1]byte
		k, err := m.r.Read(one[:])
		if k > 0 {
			return 0, m.err
		}
		return 0, err
	}
	if int64(len(p)) > m.n {
		p = p[:m.n]
	}
	k, err := m.r.Read(p)
	m.n -= int64(k)
	return k, err
}

// finish seals a complete upload: the store's FinishUpload, the client's
// Repr-Digest, and concatenations waiting for it.
func (h *Handler) finish(ctx context.Context, up store.Upload, info store.Info) error {
	ctx = context.WithoutCancel(ctx) // the client may be gone; the upload is done regardless
	if err := up.FinishUpload(ctx); err != nil {
		return err
	}
	if v := reprVerifier(info.ReprDigest); v != nil {
		rd, err := up.GetReader(ctx)
		if err != nil {
			return err
		}
		_, err = io.Copy(v, rd)
		rd.Close()
		if err != nil {
			return err
		}
		if err := v.check(); err != nil {
			h.log.Warn("upload failed its Repr-Digest", "id", info.ID)
			if h.term != nil {
				if terr := h.terminate(ctx, up); terr != nil {
					h.log.Warn("terminate failed upload", "id", info.ID, "err", terr)
				}
			}
			return err
		}
	}
	h.log.Info("upload finished", "id", info.ID, "size", info.Size, "name", info.Name)
	if info.IsPartial {
		h.completeWaiting(ctx, info.ID)
	}
	return nil
}

// terminate removes an upload and stops counting the storage it held.
func (h *Handler) terminate(ctx context.Context, up store.Upload) error {
	info, err := up.GetInfo(ctx)
	if err != nil {
		return err
	}
	if err := h.term.Terminate(ctx, up); err != nil {
		return err
	}
	h.storage.Release(store.Footprint(info))
	return nil
}

// DelFile terminates an upload (tus termination, draft cancellation): 204.
// A request still appending to it in this process is taken over at once.
func (h *Handler) DelFile(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.start(w, r); !ok {
		return
	}
	if h.term == nil {
		writeProblem(w, r, ErrNotImplemented.with("termination"))
		return
	}
	if err := h.Terminate(r.Context(), h.id(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
