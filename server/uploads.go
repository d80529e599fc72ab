package server

import (
	"cmp"
	"context"
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

// uploadDiskShare is the share of the free space of the uploads' file
// system that uploads may take by default: a parallel upload needs room
// for its parts and their concatenation, and the rest stays for the
// system.
const uploadDiskShare = 0.8

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
	maxStorage, err := uploadStorage(cfg, st)
	if err != nil {
		return &ConfigError{Field: "MaxUploadStorage", Err: err}
	}
	h, err := resumable.New(resumable.Config{
		Store:         st,
		BasePath:      uploadsPath,
		MaxSize:       cfg.MaxUploadSize,
		MaxStorage:    maxStorage,
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

// uploadStorage is the resumable.Config.MaxStorage for cfg, as
// Config.MaxUploadStorage describes: by default, what the filestore in
// Uploads holds plus uploadDiskShare of the space left on its file system.
func uploadStorage(cfg Config, st store.Store) (int64, error) {
	_, lists := st.(store.Lister)
	switch {
	case cfg.MaxUploadStorage > 0:
		return cfg.MaxUploadStorage, nil
	case cfg.MaxUploadStorage < 0 || !lists:
		return 0, nil
	}
	free, ok := int64(0), false
	if cfg.UploadStore == nil {
		measure := diskFree
		if cfg.diskFree != nil {
			measure = cfg.diskFree
		}
		free, ok = measure(cfg.Uploads)
	}
	if !ok {
		return DefaultMaxUploadStorage, nil
	}
	_, held, err := store.MeasureUsage(context.Background(), st)
	if err != nil {
		return 0, err
	}
	return max(held+int64(float64(free)*uploadDiskShare), 1), nil
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
