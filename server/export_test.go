package server

// HashCount reports how many digest computations s has started.
func HashCount(s *Server) int64 { return s.digests.hashes.Load() }
