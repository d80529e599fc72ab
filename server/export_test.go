package server

import "time"

// HashCount reports how many digest computations s has started.
func HashCount(s *Server) int64 { return s.digests.hashes.Load() }

// WithClock returns cfg with the clock the server runs on: digests,
// upload expiry and creation rates. Deadlines on connections follow
// time.Now regardless.
func WithClock(cfg Config, now func() time.Time) Config {
	cfg.clock = now
	return cfg
}

// WithDiskSpace returns cfg with a measure of the free space and size of
// the uploads' file system.
func WithDiskSpace(cfg Config, space func(dir string) (free, size int64, ok bool)) Config {
	cfg.diskSpace = space
	return cfg
}
