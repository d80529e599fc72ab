package daemon

import (
	"log/slog"
	"time"

	"github.com/ferryhq/ferry"
)

// Config configures a daemon. The zero value runs with the defaults.
type Config struct {
	// StateDir holds the journal (ferry.db), the uploads' state and, by
	// default, the socket. "" means bgapi.DefaultStateDir().
	StateDir string
	// Socket is the unix socket of the API. "" means StateDir/daemon.sock.
	Socket string
	// MetricsAddr, if set, serves Prometheus metrics at
	// http://MetricsAddr/metrics.
	MetricsAddr string
	// MaxTasks bounds the tasks running at once (0: 4).
	MaxTasks int
	// Session configures the transfers: per-host connection cap, the
	// bandwidth budget shared by every task, timeouts, retries.
	Session ferry.Config
	// RetryWait is the first wait before a task whose host could not be
	// reached is tried again; it doubles up to an hour (0: 5s).
	RetryWait time.Duration
	// Logger receives the daemon's log (nil: text on stderr).
	Logger *slog.Logger
	// Ready, if set, is called once the daemon answers on its socket.
	Ready func()

	// recorded, if set, is called once a transfer's end is recorded,
	// before its run is forgotten (tests).
	recorded func(taskID string)
}
