// Package setting applies the rule every numeric limit of ferry's server
// configuration follows (server.Config, server.Options, stream.Config):
// 0 means the default, a negative value means off.
package setting

import "time"

// Resolve returns the value in force of a setting set to v whose default
// is def: def for 0, 0 for a negative v (off: no limit, no timeout, to the
// code that applies it), v itself otherwise.
func Resolve[T int | int64 | float64 | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}
