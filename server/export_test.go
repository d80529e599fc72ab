package server

import "time"

// HashCount reports how many digest computations s has started.
func HashCount(s *Server) int64 { return s.digests.hashes.Load() }

// WithClock returns cfg with the clock the server runs on: digests, idle
// bodies, upload expiry and creation rates.
func WithClock(cfg Config, now func() time.Time) Config {
	cfg.clock = now
	return cfg
}

// WithDiskFree returns cfg with a measure of the free space of the
// uploads' file system.
func WithDiskFree(cfg Config, free func(dir string) (int64, bool)) Config {
	cfg.diskFree = free
	return cfg
}
