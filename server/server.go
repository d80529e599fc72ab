package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferryhq/ferry/server/internal/setting"
	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/stream"
)

// Config configures a Server. The zero value of every field but Root is
// usable. Every limit follows one rule: 0 means its default, a negative
// value turns it off (no limit, no timeout).
type Config struct {
	Root   string       // directory served by GET/HEAD; required
	Logger *slog.Logger // nil: discard

	// Uploads is the directory resumable uploads are kept in (a
	// filestore). Setting it, or UploadStore, enables /files/ and
	// POST /upload; "" with no UploadStore leaves them off.
	Uploads string
	// UploadStore keeps uploads instead of a filestore in Uploads.
	UploadStore store.Store
	// Token, when set, is required as "Authorization: Bearer <Token>" on
	// every upload endpoint (401 otherwise). Files under Root and
	// /healthz stay public.
	Token string
	// MaxUploadSize is the largest upload or live stream accepted, in
	// bytes (413 past it). Default and off alike: no limit.
	MaxUploadSize int64
	// UploadExpiry is how long an unfinished upload may sit without new
	// bytes before it is removed. 0: resumable.DefaultExpiry (24h);
	// negative: never.
	UploadExpiry time.Duration
	// UploadStallTimeout is how long an upload request's content may
	// stall before a newer request for that upload takes over. 0:
	// resumable.DefaultStallTimeout (10s); negative: never taken over (a
	// stalled request keeps its upload until BodyIdleTimeout ends it).
	UploadStallTimeout time.Duration
	// MaxUploadStorage bounds what uploads and live streams hold, in
	// bytes: uploads finished or not and streams finished or in progress,
	// each counted with a record of about 4 KiB (store.RecordBytes). What
	// would pass it gets 507: an upload or a stream whose length does not
	// fit, and new bytes once it is full (an append keeps what fit, a
	// plain stream is dropped). 0 means: for the filestore in Uploads (or
	// streams alone), no bound of its own, but new bytes get 507 while
	// its file system has less room than 5% of its size (at most 4 GiB)
	// kept back for the system, asked as bytes arrive, so space freed
	// there is usable at once; DefaultMaxUploadStorage for another store
	// that can list its uploads, or where the free space is unknown; no
	// limit for a store that cannot. Negative: no limit. Streams
	// draw on the uploads' limit and are measured on the uploads' file
	// system: keep Streams on it, as its default is. See
	// resumable.Config.MaxStorage and Room.
	MaxUploadStorage int64
	// UploadCreationRate is how many uploads one client (an IP address,
	// or an IPv6 /64) may create a second once it has created
	// UploadCreationBurst at once (429 with Retry-After past them); each
	// file of a form and each live stream counts as one. 0:
	// DefaultUploadCreationRate; negative: no limit.
	UploadCreationRate float64
	// UploadCreationBurst is how many uploads one client may create at
	// once. 0: DefaultUploadCreationBurst; negative: no burst, one at a
	// time at UploadCreationRate.
	UploadCreationBurst int

	clock     func() time.Time                             // the server's clock (digests, upload expiry and rates); nil: time.Now
	diskSpace func(dir string) (free, size int64, ok bool) // nil: the file system's
	// Streams is the directory live streams (POST /stream/<name>) are
	// kept in; "" means <Uploads>/streams when Uploads is set, and no
	// stream endpoint otherwise.
	Streams string
	// StreamProcessors picks the processor run over a new stream; nil
	// means none (the stream is stored, and its length and sha-256
	// reported).
	StreamProcessors stream.ProcessorFactory
	// Hide names more directories GET and HEAD never serve from below
	// Root, in addition to Uploads and Streams (which are never served
	// there either: uploads are reached through /files/ and /stream/
	// only), such as the state directory of a ferry daemon. A directory
	// is recognised by its identity (device and inode), however a request
	// reaches it: through a link, a bind mount or another spelling. A
	// Root inside one of them is refused with ErrRootInState.
	Hide []string
	// BodyIdleTimeout ends a request whose content (an upload, an
	// append, a form) goes this long without a byte: the handler's read
	// fails with ErrBodyIdle and the connection is closed. Every byte
	// resets it, so a slow but moving upload is never cut. 0:
	// DefaultBodyIdleTimeout (60s); negative: none.
	BodyIdleTimeout time.Duration
	// StreamIdleTimeout is the idle timeout of a live stream's content
	// (POST and PATCH /stream/), longer than BodyIdleTimeout because a
	// producer may pause: ferry stream sends nothing while it waits for
	// its input. A plain stream paused longer ends with an error reply; a
	// resumable one keeps what it stored and continues on the client's
	// next request. 0: DefaultStreamIdleTimeout (5m); negative: none.
	StreamIdleTimeout time.Duration
	// MaxUploadsPerClient bounds the requests with content (uploads,
	// appends, forms, streams) in flight from one client address (an IPv6
	// client: its /64), and its live streams in progress (a resumable one
	// waits for its next request until it expires); more get 429 with
	// Retry-After. The server takes stream.DefaultMaxStreams streams in
	// progress in all (503 past it). Behind a reverse proxy every client
	// has the proxy's address: raise it or turn it off there. 0:
	// DefaultMaxUploadsPerClient (32), comfortably above ferry put -x 8
	// or tus-js-client's parallelUploads: 8; negative: no bound.
	MaxUploadsPerClient int
	// ServeDotFiles serves files and directories whose names start with
	// a dot (.well-known, .git, .env); by default they are answered like
	// missing files. ferry's work files (NAME.part, NAME.ferry,
	// .NAME.tmp*) are never served.
	ServeDotFiles bool
}

// Server is ferry's origin handler. It is safe for concurrent use; call
// [Server.Close] when done with it.
type Server struct {
	root    *os.Root
	log     *slog.Logger
	mux     *http.ServeMux
	digests *digestCache
	uploads *resumable.Handler // nil when uploads are off
	streams *stream.Handler    // nil when streams are off
	token   []byte             // sha-256 of Config.Token, nil when open
	now     func() time.Time   // the clock of digests, expiry and rates, replaced in tests
	netNow  func() time.Time   // the clock of network deadlines: time.Now, which a test may replace

	hide     []string // absolute paths of the state directories not served
	dotFiles bool

	bodyIdleTimeout time.Duration // 0: none
	streamIdle      time.Duration // 0: none
	clients         *clientLimiter

	// cancel ends work that outlives one request, such as hashing a file
	// other requests are waiting for.
	cancel context.CancelFunc
}

// digestCacheEntries bounds the digest cache. An entry is a path, an ETag and
// at most 64 bytes of digest: a few hundred bytes for common path lengths.
const digestCacheEntries = 1024

// New returns a Server for cfg. It opens cfg.Root once, and every file it
// serves is opened relative to that directory, so a Root renamed while the
// server runs is still the one served. The error is a *[ConfigError] when
// Root is empty, missing or not a directory.
func New(cfg Config) (*Server, error) {
	if cfg.Root == "" {
		return nil, &ConfigError{Field: "Root", Err: ErrNoRoot}
	}
	fi, err := os.Stat(cfg.Root)
	if err != nil {
		return nil, &ConfigError{Field: "Root", Value: cfg.Root, Err: err}
	}
	if !fi.IsDir() {
		return nil, &ConfigError{Field: "Root", Value: cfg.Root, Err: ErrNotDir}
	}
	if cfg.Streams == "" && cfg.Uploads != "" {
		cfg.Streams = filepath.Join(cfg.Uploads, "streams")
	}
	hide := stateDirs(cfg)
	if err := checkRoot(cfg.Root, hide); err != nil {
		return nil, &ConfigError{Field: "Root", Value: cfg.Root, Err: err}
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return nil, &ConfigError{Field: "Root", Value: cfg.Root, Err: err}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.clock
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		root:    root,
		log:     log,
		mux:     http.NewServeMux(),
		digests: newDigestCache(ctx, digestCacheEntries),
		now:     now,
		netNow:  time.Now,
		cancel:  cancel,

		hide:     hide,
		dotFiles: cfg.ServeDotFiles,

		bodyIdleTimeout: setting.Resolve(cfg.BodyIdleTimeout, DefaultBodyIdleTimeout),
		streamIdle:      setting.Resolve(cfg.StreamIdleTimeout, DefaultStreamIdleTimeout),
		clients:         newClientLimiter(setting.Resolve(cfg.MaxUploadsPerClient, DefaultMaxUploadsPerClient)),
	}
	if err := s.setup(cfg); err != nil {
		s.Close()
		return nil, err
	}
	s.routes()
	return s, nil
}

// setup builds the upload and stream handlers cfg enables, and the meter
// of the storage they share.
func (s *Server) setup(cfg Config) error {
	st, err := uploadStore(cfg)
	if err != nil {
		return err
	}
	meter, err := s.storageMeter(cfg, st)
	if err != nil {
		return err
	}
	if err := s.setupUploads(cfg, st, meter); err != nil {
		return err
	}
	return s.setupStreams(cfg, meter)
}

// routes is the one place where endpoints are registered. A pattern with
// GET also matches HEAD, and the mux answers other methods on a known path
// with 405 and an Allow header (RFC 9110 §15.5.6).
func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.serveHealth)
	s.mux.HandleFunc("GET /", s.serveFile)
	if s.uploads != nil {
		s.uploadRoutes()
	}
	if s.streams != nil {
		h := s.authorize(s.streams)
		for _, m := range []string{"GET", "POST", "PATCH", "DELETE"} {
			s.mux.Handle(m+" "+stream.DefaultBasePath, h)
		}
	}
}

// setupStreams builds the live stream handler when cfg enables it,
// drawing on the storage meter the uploads draw on.
func (s *Server) setupStreams(cfg Config, meter *store.Meter) error {
	dir := cfg.Streams // New defaults it to <Uploads>/streams
	if dir == "" {
		return nil
	}
	sc := stream.Config{
		Dir: dir, Processors: cfg.StreamProcessors, MaxSize: cfg.MaxUploadSize, Logger: s.log,
		// A client's streams in progress, unfinished resumable ones
		// included, count against the same bound as its uploads.
		MaxStreamsPerClient: cmp.Or(s.clients.max, -1),
		Storage:             meter,
	}
	if s.uploads != nil {
		// Creating a stream takes from the allowance of creations.
		sc.CreationLimit = s.uploads.AllowCreation
	}
	h, err := stream.New(sc)
	if err != nil {
		return &ConfigError{Field: "Streams", Value: dir, Err: err}
	}
	s.streams = h
	if cfg.Token != "" && s.token == nil {
		sum := sha256.Sum256([]byte(cfg.Token))
		s.token = sum[:]
	}
	return nil
}

// Close releases the root directory and stops digests being computed in the
// background. Requests still running may fail.
func (s *Server) Close() error {
	s.cancel()
	if s.uploads != nil {
		s.uploads.Close()
	}
	if s.streams != nil {
		s.streams.Close()
	}
	return s.root.Close()
}

// ServeHTTP logs the request, refuses malformed paths, puts its content
// under the idle timeout and the per-client bound, and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lw := &logWriter{ResponseWriter: w}
	defer func() { s.logRequest(r, lw, time.Since(start)) }()

	// Refuse before routing: the mux would otherwise answer unclean paths
	// with a redirect to the cleaned one, and a path trick deserves an error.
	if !validPath(r.URL.Path) {
		writeError(lw, ErrBadPath)
		return
	}
	if !hasBody(r) {
		s.mux.ServeHTTP(lw, r)
		return
	}
	var hw http.ResponseWriter = lw
	if idle := s.bodyIdle(r); idle > 0 {
		hw, r = guardBody(lw, r, idle, s.netNow)
	}
	release, ok := s.clients.acquire(r.RemoteAddr)
	if !ok {
		lw.Header().Set("Retry-After", "1")
		if r.ProtoMajor == 1 {
			// Or net/http reads what content there is before it
			// answers: all of it, if the client trickles it.
			lw.Header().Set("Connection", "close")
		}
		writeProblem(lw, r, ErrClientBusy)
		return
	}
	defer release()
	s.mux.ServeHTTP(hw, r)
}

// validPath reports whether p is an absolute slash-separated path without
// dot or empty segments (a trailing slash is allowed), backslashes or NUL
// bytes. The URL has already been percent-decoded, so "%2e%2e" is "..".
// os.Root is the real guard against escapes; this only makes tricks fail
// early and loudly.
func validPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		switch seg {
		case ".", "..":
			return false
		case "":
			if i != len(segs)-1 {
				return false
			}
		}
	}
	return true
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, "ok\n")
}

func (s *Server) logRequest(r *http.Request, lw *logWriter, d time.Duration) {
	status := lw.status
	if status == 0 {
		status = http.StatusOK // the handler wrote nothing; net/http sends 200
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.Int("status", status),
		slog.Int64("bytes", lw.bytes),
		slog.Duration("duration", d),
		slog.String("remote", r.RemoteAddr),
		slog.String("proto", r.Proto),
		slog.String("range", r.Header.Get("Range")),
	)
}
