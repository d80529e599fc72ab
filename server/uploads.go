package server

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/filestore"
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

// setupUploads builds the upload handler when cfg enables uploads.
func (s *Server) setupUploads(cfg Config) error {
	if cfg.MaxUploadSize < 0 {
		return &ConfigError{Field: "MaxUploadSize", Err: ErrNegativeSize}
	}
	st := cfg.UploadStore
	if st == nil {
		if cfg.Uploads == "" {
			return nil
		}
		fs, err := filestore.New(filestore.Config{Dir: cfg.Uploads})
		if err != nil {
			return &ConfigError{Field: "Uploads", Value: cfg.Uploads, Err: err}
		}
		st = fs
	}
	maxStorage, room := uploadStorage(cfg, st)
	h, err := resumable.New(resumable.Config{
		Store:         st,
		BasePath:      uploadsPath,
		MaxSize:       cfg.MaxUploadSize,
		MaxStorage:    maxStorage,
		Room:          room,
		CreationRate:  orDefault(cfg.UploadCreationRate, DefaultUploadCreationRate),
		CreationBurst: cmp.Or(max(cfg.UploadCreationBurst, 0), DefaultUploadCreationBurst),
		Expiry:        cfg.UploadExpiry,
		StallTimeout:  cfg.UploadStallTimeout,
		Logger:        s.log,
		Now:           s.now,
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

// uploadStorage is the resumable.Config.MaxStorage and Room for cfg, as
// Config.MaxUploadStorage describes: by default, for the filestore in
// Uploads, no bound of its own but the room on its file system less a
// reserve, asked as bytes arrive.
func uploadStorage(cfg Config, st store.Store) (limit int64, room func() (int64, bool)) {
	_, lists := st.(store.Lister)
	switch {
	case cfg.MaxUploadStorage > 0:
		return cfg.MaxUploadStorage, nil
	case cfg.MaxUploadStorage < 0:
		return 0, nil
	case cfg.UploadStore == nil:
		space := diskSpace
		if cfg.diskSpace != nil {
			space = cfg.diskSpace
		}
		if _, _, ok := space(cfg.Uploads); ok {
			return 0, func() (int64, bool) {
				free, size, ok := space(cfg.Uploads)
				return free - min(int64(float64(size)*diskReserve), maxDiskReserve), ok
			}
		}
	}
	if !lists {
		return 0, nil
	}
	return DefaultMaxUploadStorage, nil
}

// orDefault is v, def when v is zero, or 0 (no limit) when v is negative.
func orDefault(v, def float64) float64 {
	switch {
	case v < 0:
		return 0
	case v == 0:
		return def
	}
	return v
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
