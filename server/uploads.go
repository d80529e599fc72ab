package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferryhq/ferry/server/internal/setting"
	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/filestore"
	"github.com/ferryhq/ferry/server/stream"
)

// uploadsPath is where resumable uploads live; formPath takes
// multipart/form-data.
const (
	uploadsPath = resumable.DefaultBasePath
	formPath    = "/upload"
)

// Defaults of the upload limits in Config. They protect a server started
// with nothing but Uploads, and stay far from what legitimate clients do:
// a parallel upload creates one upload per connection and one to join
// them, and an upload that expires unfinished frees what it held.
const (
	// DefaultMaxUploadStorage is MaxUploadStorage where the free space of
	// the uploads' file system is unknown.
	DefaultMaxUploadStorage    = 10 << 30
	DefaultUploadCreationRate  = 20
	DefaultUploadCreationBurst = 100
)

// The share of its file system the uploads leave free by default, for the
// system and everything else on it: diskReserve of its size, at most
// maxDiskReserve.
const (
	diskReserve    = 0.05
	maxDiskReserve = 4 << 30
)

// uploadStore returns the store cfg keeps uploads in, nil when uploads
// are off.
func uploadStore(cfg Config) (store.Store, error) {
	if cfg.UploadStore != nil || cfg.Uploads == "" {
		return cfg.UploadStore, nil
	}
	fs, err := filestore.New(filestore.Config{Dir: cfg.Uploads})
	if err != nil {
		return nil, &ConfigError{Field: "Uploads", Value: cfg.Uploads, Err: err}
	}
	return fs, nil
}

// setupUploads builds the upload handler over st, nil when uploads are
// off, drawing on the storage meter.
func (s *Server) setupUploads(cfg Config, st store.Store, meter *store.Meter) error {
	if st == nil {
		return nil
	}
	h, err := resumable.New(resumable.Config{
		Store:         st,
		BasePath:      uploadsPath,
		MaxSize:       setting.Resolve(cfg.MaxUploadSize, 0),
		Storage:       meter,
		CreationRate:  setting.Resolve(cfg.UploadCreationRate, DefaultUploadCreationRate), // its 0: no limit
		CreationBurst: cmp.Or(setting.Resolve(cfg.UploadCreationBurst, DefaultUploadCreationBurst), 1),
		// resumable's rule for these is the server's.
		Expiry:       cfg.UploadExpiry,
		StallTimeout: cfg.UploadStallTimeout,
		Logger:       s.log,
		Now:          s.now,
	})
	if err != nil {
		return &ConfigError{Field: "UploadStore", Err: err}
	}
	s.uploads = h
	if cfg.Token != "" {
		sum := sha256.Sum256([]byte(cfg.Token))
		s.token = sum[:]
	}
	return nil
}

// storageMeter returns the meter of what uploads (in st, nil when they are
// off) and live streams may still store, as Config.MaxUploadStorage
// describes; nil for no limit. Both share it: streams are kept in
// <Uploads>/streams, on the uploads' file system.
func (s *Server) storageMeter(cfg Config, st store.Store) (*store.Meter, error) {
	limit, room := storageLimits(cfg, st)
	if limit == 0 && room == nil {
		return nil, nil
	}
	var used int64
	if limit > 0 {
		n, bytes, err := storageUsed(cfg, st)
		if err != nil {
			return nil, err
		}
		used = bytes
		s.log.Info("upload storage", "uploads", n, "bytes", used, "max", limit)
	}
	return store.NewMeter(store.MeterConfig{Max: limit, Used: used, Room: room, Now: s.now}), nil
}

// storageLimits is the limit and the room of the storage meter for cfg:
// by default, for the filestore in Uploads (or streams alone), no limit of
// its own but the room on its file system less a reserve, asked as bytes
// arrive; DefaultMaxUploadStorage where that is unknown, or for another
// store that can list its uploads; none for a store that cannot.
func storageLimits(cfg Config, st store.Store) (limit int64, room func() (int64, bool)) {
	switch {
	case cfg.MaxUploadStorage > 0:
		return cfg.MaxUploadStorage, nil
	case cfg.MaxUploadStorage < 0:
		return 0, nil
	}
	dir := "" // the directory whose file system holds everything
	switch {
	case st == nil:
		dir = nearestDir(cfg.Streams) // created with the first stream
	case cfg.UploadStore == nil:
		dir = cfg.Uploads
	}
	if dir != "" {
		space := diskSpace
		if cfg.diskSpace != nil {
			space = cfg.diskSpace
		}
		if _, _, ok := space(dir); ok {
			return 0, func() (int64, bool) {
				free, size, ok := space(dir)
				return free - min(int64(float64(size)*diskReserve), maxDiskReserve), ok
			}
		}
	}
	if _, lists := st.(store.Lister); st != nil && !lists {
		return 0, nil
	}
	return DefaultMaxUploadStorage, nil
}

// storageUsed measures what the uploads in st and the finished streams
// hold, as the storage meter counts them.
func storageUsed(cfg Config, st store.Store) (uploads int, bytes int64, err error) {
	if st != nil {
		if uploads, bytes, err = store.MeasureUsage(context.Background(), st); err != nil {
			return 0, 0, &ConfigError{Field: "MaxUploadStorage", Err: err}
		}
	}
	if cfg.Streams != "" {
		n, err := stream.Usage(cfg.Streams)
		if err != nil {
			return 0, 0, &ConfigError{Field: "Streams", Value: cfg.Streams, Err: err}
		}
		bytes += n
	}
	return uploads, bytes, nil
}

// nearestDir returns dir, or the closest of its parents that exists.
func nearestDir(dir string) string {
	for {
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// uploadRoutes registers the upload endpoints. The patterns name their
// methods so they stay more specific than "GET /" for the files below
// Root; a file at <Root>/files/... is shadowed while uploads are on.
func (s *Server) uploadRoutes() {
	h := s.authorize(s.uploads)
	collection := strings.TrimSuffix(uploadsPath, "/")
	for _, m := range []string{"GET", "POST", "PATCH", "DELETE", "OPTIONS"} {
		s.mux.Handle(m+" "+uploadsPath, h)
	}
	s.mux.Handle("POST "+collection, h)
	s.mux.Handle("OPTIONS "+collection, h)
	s.mux.Handle("POST "+formPath, s.authorize(http.HandlerFunc(s.uploads.PostForm)))
}

// authorize requires the bearer token, when one is configured. OPTIONS is
// exempt: browsers send CORS preflights without credentials, and the
// answer reveals nothing about uploads.
func (s *Server) authorize(next http.Handler) http.Handler {
	if s.token == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions || s.validToken(r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
		writeProblem(w, r, ErrUnauthorized)
	})
}

// validToken compares the request's bearer token with the configured one
// in constant time. Both are hashed first, so neither the content nor the
// length of the token leaks through timing.
func (s *Server) validToken(r *http.Request) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], s.token) == 1
}
