package daemon

import (
	"log/slog"
	"os"
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

	// user is the uid the daemon serves, nil for its own (tests serve
	// others to see them refused).
	user *int
	// peer is the uid allowed to connect, nil for user (tests).
	peer *int

	// recorded, if set, is called once a transfer's end is recorded,
	// before its run is forgotten (tests).
	recorded func(taskID string)
}

// uid is the user the daemon acts for.
func (c *Config) uid() int {
	if c.user != nil {
		return *c.user
	}
	return os.Geteuid()
}

// peerUID is the user whose connections the daemon answers.
func (c *Config) peerUID() int {
	if c.peer != nil {
		return *c.peer
	}
	return c.uid()
}
