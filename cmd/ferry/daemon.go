package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/daemon"
)

func daemonCmd(io stdio) *cobra.Command {
	var (
		df                 daemonFlags
		metrics, limitRate string
		maxTasks, maxConns int
		quiet, recoverJ    bool
	)
	c := &cobra.Command{
		Use:   "daemon",
		Short: "Run the daemon that carries out background transfers",
		Long: `Run ferry's daemon, for transfers that outlive the program that asked for
them: ferry bg get|put|hls hand it a task and return at once, while it
downloads and uploads with retries, waiting out lost connectivity; ls,
pause, resume, cancel, wait and events manage the tasks and tell what
became of them.

The tasks and their events are kept in an embedded database in the state
directory, so a daemon started again carries on with them. One daemon runs
per state directory; it listens on a unix socket (daemon.sock there, or
--socket, or $FERRY_SOCKET), which the other commands find with the same
--state and --socket. It logs to stderr. Ctrl-C or SIGTERM shuts it down
gracefully.

The daemon acts for its user only: it refuses a state directory that
others may write in, a socket in a directory where others could replace
it, and a socket path holding anything but a stale socket of its own; it
answers no other user's connections.

A damaged journal (a lost block, a file cut short, a flipped bit) is never
started over: the daemon moves it to ferry.db.damaged-TIME, says so and
exits 1, and refuses to start until it is recovered. A journal it cannot
open for another reason (too little memory to map it, a later ferry's
format) is left as it is, and the daemon exits 1 with the cause. A full
disk does no damage: the daemon refuses new tasks until there is room, and
records then what became of the transfers meanwhile.
--recover (with no daemon running on the state directory) builds the
journal again from what is readable in it, reports what it kept and what
it lost (tasks known to be lost are recorded as failed, so that whoever
waits for them learns it), keeps the damaged file, and exits; start the
daemon again afterwards.`,
		Args: argsExactly(0, "daemon takes no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if recoverJ {
				r, err := daemon.Recover(daemon.Config{StateDir: df.config().StateDir})
				if err != nil {
					return err
				}
				fmt.Fprintln(io.out, r)
				return nil
			}
			if maxTasks < 1 {
				return usagef("--max-tasks must be at least 1")
			}
			if maxConns < 1 {
				return usagef("--max-conns-per-host must be at least 1")
			}
			session := ferry.DefaultConfig()
			session.MaxConnsPerHost = maxConns
			if limitRate != "" {
				n, err := parseSize(limitRate)
				if err != nil || n <= 0 {
					return usagef("--limit-rate: invalid rate %q", limitRate)
				}
				session.RateLimit = n
			}
			level := slog.LevelInfo
			if quiet {
				level = slog.LevelWarn
			}
			dc := df.config()
			cfg := daemon.Config{
				StateDir:    dc.StateDir,
				Socket:      dc.Socket,
				MetricsAddr: metrics,
				MaxTasks:    maxTasks,
				Session:     session,
				Logger:      slog.New(slog.NewTextHandler(io.err, &slog.HandlerOptions{Level: level})),
			}
			ctx := c.Context()
			err := daemon.Run(ctx, cfg)
			if ctx.Err() != nil && (err == nil || errors.Is(err, ctx.Err())) {
				return nil // asked to stop: a clean shutdown
			}
			return err
		},
	}
	fl := c.Flags()
	fl.SortFlags = false
	df.register(fl)
	fl.StringVar(&metrics, "metrics", "", "serve Prometheus metrics at http://`HOST:PORT`/metrics")
	fl.IntVar(&maxTasks, "max-tasks", 4, "run at most `N` tasks at once")
	fl.StringVar(&limitRate, "limit-rate", "", "cap the speed of all transfers together at `RATE` bytes/s, e.g. 500k, 2M")
	fl.IntVar(&maxConns, "max-conns-per-host", ferry.DefaultConfig().MaxConnsPerHost, "open at most `N` connections to one host, across all tasks")
	fl.BoolVarP(&quiet, "quiet", "q", false, "log only warnings and errors")
	fl.BoolVar(&recoverJ, "recover", false, "rebuild a damaged journal from what is readable in it, report what was kept and lost, and exit")
	return c
}
