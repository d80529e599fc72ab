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
