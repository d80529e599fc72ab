package server

import "time"

// HashCount reports how many digest computations s has started.
func HashCount(s *Server) int64 { return s.digests.hashes.Load() }

// WithUploadClock returns cfg with the clock the upload handler uses for
// expiry and creation rates.
func WithUploadClock(cfg Config, now func() time.Time) Config {
	cfg.uploadClock = now
	return cfg
}

// WithDiskFree returns cfg with a measure of the free space of the
// uploads' file system.
func WithDiskFree(cfg Config, free func(dir string) (int64, bool)) Config {
	cfg.diskFree = free
	return cfg
}

// SetClock replaces s's clock; call it before s serves a request.
func SetClock(s *Server, now func() time.Time) { s.now = now }
