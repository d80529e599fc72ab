package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryhq/ferry"
)

// daemonFlags say where the daemon is. The daemon and every command that
// talks to it take them, so that the same flags (or none) find it.
type daemonFlags struct {
	state, socket string
}

func (f *daemonFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.state, "state", "", "the daemon's state `DIR` (default $XDG_STATE_HOME/ferry or ~/.local/state/ferry)")
	fl.StringVar(&f.socket, "socket", "", "the daemon's unix socket `PATH` (default $FERRY_SOCKET, else daemon.sock in the state DIR)")
}

// config locates the daemon as the library does, with the flags' say. A
// daemon started for bg is this ferry's own (a build run from its
// directory, say), not whichever is first in PATH; a binary by another
// name (a test's) leaves that to PATH.
func (f *daemonFlags) config() ferry.DaemonConfig {
	dc := ferry.DaemonConfig{StateDir: f.state, Socket: f.socket}
	if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "ferry" {
		dc.Command = []string{exe, "daemon"}
	}
	return dc.WithDefaults()
}

func (f *daemonFlags) daemon() *ferry.Daemon { return ferry.NewDaemon(f.config()) }

func bgCmd(io stdio) *cobra.Command {
	c := &cobra.Command{
		Use:   "bg COMMAND",
		Short: "Hand a transfer to the daemon and return at once",
		Long: `Queue a download, an upload or an HLS download with the daemon (ferry
daemon, started from PATH when none runs) and print the task's ID at once;
the transfer goes on after this command and the shell that ran it are gone. The flags are those of the
foreground command that a task carries (retries and timeouts are the
daemon's own configuration; --limit-rate caps this task within the
daemon's own cap), plus:

  --session ID   the session the task belongs to (required): ls, wait and
                 events select tasks by it
  --priority N   queued tasks of higher N start first
  --not-before T hold the task until T (RFC 3339) or for a duration (2h)

Paths are made absolute here: the daemon's working directory is not ours.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown bg command %q (want get, put or hls)", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	c.AddCommand(bgGetCmd(io), bgPutCmd(io), bgHLSCmd(io))
	return c
}

// bgFlags are what every bg command takes besides its request's flags:
// the session, the schedule, --json and where the daemon is.
type bgFlags struct {
	daemonFlags
	requestFlags
	session   string
	priority  int
	notBefore string
	jsonOut   bool
}

func (f *bgFlags) register(fl *pflag.FlagSet, connectionsUsage string, connectionsDefault int) {
	f.requestFlags.register(fl, connectionsUsage, connectionsDefault)
	fl.StringVar(&f.session, "session", "", "the session `ID` the task belongs to (required)")
	fl.IntVar(&f.priority, "priority", 0, "start before queued tasks of lower `N`")
	fl.StringVar(&f.notBefore, "not-before", "", "hold the task until `TIME` (RFC 3339) or for a duration, e.g. 2h")
	fl.BoolVar(&f.jsonOut, "json", false, "print the whole task as JSON instead of its ID")
	f.daemonFlags.register(fl)
}

// schedule checks what all bg commands share and reads the task's
// schedule and rate limit.
func (f *bgFlags) schedule() (ferry.Schedule, int64, error) {
	if f.session == "" {
		return ferry.Schedule{}, 0, usagef("--session ID is required")
	}
	nb, err := parseNotBefore(f.notBefore, time.Now())
	if err != nil {
		return ferry.Schedule{}, 0, err
	}
	rate, err := parseRate(f.limitRate)
	return ferry.Schedule{Priority: f.priority, NotBefore: nb}, rate, err
}

// parseNotBefore reads --not-before: a time, or a duration from now.
func parseNotBefore(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(d), nil
	}
	return time.Time{}, usagef("--not-before %q: want a time like 2006-01-02T15:04:05Z or a duration like 90m", s)
}

// queue is a bg command's RunE: after the shared flags, build makes the
// request from the arguments with the task's schedule and rate limit, and
// send queues it with the daemon, starting one when none runs. It prints
// the task's ID, or the task with --json.
func queue[R any](f *bgFlags, io stdio, build func(args []string, sch ferry.Schedule, rate int64) (R, error),
	send func(*ferry.Daemon, context.Context, string, R) (*ferry.BackgroundTask, error)) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		sch, rate, err := f.schedule()
		if err != nil {
			return err
		}
		req, err := build(args, sch, rate)
		if err != nil {
			return err
		}
		d := f.daemon()
		defer d.Close()
		t, err := send(d, c.Context(), f.session, req)
		if errors.Is(err, ferry.ErrInvalidRequest) {
			return requestError(err)
		}
		if err != nil {
			return err
		}
		if f.jsonOut {
			return printJSON(io, t)
		}
		fmt.Fprintln(io.out, t.ID)
		return nil
	}
}

func printJSON(io stdio, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.out, "%s\n", b)
	return nil
}

func bgGetCmd(io stdio) *cobra.Command {
	var (
		f bgFlags
		g getRequest
	)
	c := &cobra.Command{
		Use:   "get URL --session ID",
		Short: "Download a file in the background",
		Long: `Queue a download of URL with the daemon and print the task's ID. As with
ferry get, the file is named after the URL without -o, and appears under
its final name only once complete and verified.`,
		Args: argsExactly(1, "bg get takes exactly one URL"),
		RunE: queue(&f, io, func(args []string, sch ferry.Schedule, rate int64) (ferry.DownloadRequest, error) {
			if toStdout(g.output) {
				return ferry.DownloadRequest{}, usagef("bg get writes a file: -o - is for ferry get")
			}
			req, err := g.build(args[0], &f.requestFlags)
			req.Schedule, req.RateLimit = sch, rate
			return req, err
		}, (*ferry.Daemon).Download),
	}
	fl := c.Flags()
	fl.SortFlags = false
	g.register(fl, "write to `FILE` (default: named after the URL)")
	f.register(fl, getConnectionsUsage, 0)
	return c
}

func bgPutCmd(io stdio) *cobra.Command {
	var (
		f bgFlags
		p putRequest
	)
	c := &cobra.Command{
		Use:   "put FILE URL --session ID",
		Short: "Upload a file in the background",
		Long: `Queue an upload of FILE to URL with the daemon and print the task's ID.
URL is what ferry put takes: a tus or IETF resumable-upload endpoint, or a
multipart form.`,
		Args: argsExactly(2, "bg put takes a FILE and a URL"),
		RunE: queue(&f, io, func(args []string, sch ferry.Schedule, rate int64) (ferry.UploadRequest, error) {
			req, err := p.build(args[0], args[1], &f.requestFlags)
			req.Schedule, req.RateLimit = sch, rate
			return req, err
		}, (*ferry.Daemon).Upload),
	}
	fl := c.Flags()
	fl.SortFlags = false
	p.register(fl)
	f.register(fl, putConnectionsUsage, 1)
	return c
}

func bgHLSCmd(io stdio) *cobra.Command {
	var (
		f bgFlags
		h hlsRequest
	)
	c := &cobra.Command{
		Use:   "hls URL -o DIR --session ID",
		Short: "Download an HLS stream in the background",
		Long: `Queue an HLS download of URL into DIR with the daemon and print the task's
ID. The flags mean what they mean for ferry hls; a live stream is recorded
until it ends, for --live-duration, or until the task is cancelled.`,
		Args: argsExactly(1, "bg hls takes one URL"),
		RunE: queue(&f, io, func(args []string, sch ferry.Schedule, rate int64) (ferry.HLSRequest, error) {
			req, err := h.build("bg hls", args[0], &f.requestFlags)
			req.Schedule, req.RateLimit = sch, rate
			return req, err
		}, (*ferry.Daemon).HLS),
	}
	fl := c.Flags()
	fl.SortFlags = false
	h.register(fl)
	f.register(fl, hlsConnectionsUsage, 8)
	return c
}

func lsCmd(io stdio) *cobra.Command {
	var (
		df      daemonFlags
		session string
		jsonOut bool
	)
	c := &cobra.Command{
		Use:   "ls",
		Short: "List the daemon's tasks",
		Long: `List the daemon's tasks (of one session with --session): ID, session,
kind, state, progress and what moves where.`,
		Args: argsExactly(0, "ls takes no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			d := df.daemon()
			defer d.Close()
			tasks, err := d.Tasks(c.Context(), session)
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(io, tasks) // [] rather than null for none
			}
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSESSION\tKIND\tSTATE\tPROGRESS\tWHAT")
			for _, t := range tasks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Session, t.Kind, taskState(t, time.Now()), taskProgress(t), taskWhat(t))
			}
			return tw.Flush()
		},
	}
	fl := c.Flags()
	fl.StringVar(&session, "session", "", "list only the tasks of session `ID`")
	fl.BoolVar(&jsonOut, "json", false, "print the tasks as a JSON array")
	df.register(fl)
	return c
}

// taskProgress is ls's PROGRESS: bytes moved of bytes expected, or "-"
// before anything is known.
func taskProgress(t *ferry.BackgroundTask) string {
	if p := t.Progress; p != nil {
		if p.Expected < 0 {
			return formatBytes(p.Done) + " / ?"
		}
		return formatBytes(p.Done) + " / " + formatBytes(p.Expected)
	}
	if r := t.Result; r != nil && t.State == "done" {
		return formatBytes(r.Size) + " / " + formatBytes(r.Size)
	}
	return "-"
}

// taskWhat is ls's WHAT: "URL -> path", or "path -> URL" for an upload.
func taskWhat(t *ferry.BackgroundTask) string {
	u, path, ok := t.Stored.Ends()
	if !ok {
		return "-"
	}
	if t.Kind == "put" {
		return path + " -> " + u
	}
	return u + " -> " + path
}

// taskState is ls's STATE: a task waiting for its host says for which, as
// the progress line of a transfer in the foreground does.
func taskState(t *ferry.BackgroundTask, now time.Time) string {
	if t.State != "waiting" || t.NextTry.IsZero() {
		return t.State
	}
	host := "the server"
	if u, _, ok := t.Stored.Ends(); ok {
		if pu, err := url.Parse(u); err == nil && pu.Host != "" {
			host = pu.Host
		}
	}
	return fmt.Sprintf("waiting for %s (attempt %d, next in %s)", host, t.Tries, roundDelay(max(0, t.NextTry.Sub(now))))
}

// actCmd is pause, resume or cancel: act on each task named, print the
// state it is in then, and fail if any could not be acted on.
func actCmd(io stdio, name, short string, act func(*ferry.Daemon, context.Context, string) (*ferry.BackgroundTask, error)) *cobra.Command {
	var df daemonFlags
	c := &cobra.Command{
		Use:   name + " TASK...",
		Short: short,
		Args:  argsAtLeast(1, name+" takes one or more task IDs"),
		RunE: func(c *cobra.Command, ids []string) error {
			d := df.daemon()
			defer d.Close()
			failed := 0
			for _, id := range ids {
				t, err := act(d, c.Context(), id)
				if err != nil {
					if errors.Is(err, ferry.ErrNoDaemon) || c.Context().Err() != nil {
						return err
					}
					fmt.Fprintf(io.err, "ferry: %s: %s\n", id, printable(strings.TrimPrefix(err.Error(), "ferry: ")))
					failed++
					continue
				}
				fmt.Fprintf(io.out, "%s %s\n", t.ID, t.State)
			}
			if failed > 0 {
				return fmt.Errorf("%w: %d of %d tasks", errReported, failed, len(ids))
			}
			return nil
		},
	}
	df.register(c.Flags())
	return c
}

func pauseCmd(io stdio) *cobra.Command {
	return actCmd(io, "pause", "Pause background tasks (their state is kept)", (*ferry.Daemon).Pause)
}

func resumeCmd(io stdio) *cobra.Command {
	return actCmd(io, "resume", "Resume paused background tasks", (*ferry.Daemon).Resume)
}

func cancelCmd(io stdio) *cobra.Command {
	return actCmd(io, "cancel", "Cancel background tasks", (*ferry.Daemon).Cancel)
}

func waitCmd(io stdio) *cobra.Command {
	var (
		df      daemonFlags
		session string
		jsonOut bool
	)
	c := &cobra.Command{
		Use:   "wait [TASK...] [--session ID]",
		Short: "Wait until background tasks end",
		Long: `Wait until each TASK, and with --session every task of the session (those
created meanwhile too), has ended; print each one's final state, or the
tasks as a JSON array with --json. The exit status is 0 only if all are
done, 1 if any failed, was cancelled or is unknown.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 && session == "" {
				return usagef("wait takes task IDs or --session ID")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			d := df.daemon()
			defer d.Close()
			ctx := c.Context()
			var (
				ids     = append([]string(nil), args...)
				seen    = map[string]bool{}
				final   = []*ferry.BackgroundTask{} // [] rather than null for none
				notDone int
			)
			for _, id := range ids {
				seen[id] = true
			}
			for next := 0; ; {
				if session != "" {
					tasks, err := d.Tasks(ctx, session)
					if err != nil {
						return err
					}
					for _, t := range tasks {
						if !seen[t.ID] {
							seen[t.ID] = true
							ids = append(ids, t.ID)
						}
					}
				}
				if next == len(ids) {
					break
				}
				for ; next < len(ids); next++ {
					t, err := d.Wait(ctx, ids[next])
					if err != nil {
						if errors.Is(err, ferry.ErrNoDaemon) || ctx.Err() != nil {
							return err
						}
						fmt.Fprintf(io.err, "ferry: %s: %s\n", ids[next], printable(strings.TrimPrefix(err.Error(), "ferry: ")))
						notDone++
						continue
					}
					if t.State != "done" {
						notDone++
					}
					final = append(final, t)
					if !jsonOut {
						fmt.Fprintln(io.out, taskOutcome(t))
					}
				}
			}
			if jsonOut {
				if err := printJSON(io, final); err != nil {
					return err
				}
			}
			if notDone > 0 {
				return fmt.Errorf("%w: %d of %d tasks did not succeed", errReported, notDone, len(ids))
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&session, "session", "", "wait for every task of session `ID`")
	fl.BoolVar(&jsonOut, "json", false, "print the final tasks as a JSON array")
	df.register(fl)
	return c
}

// taskOutcome is wait's line for an ended task.
func taskOutcome(t *ferry.BackgroundTask) string {
	s := t.ID + " " + t.State
	if t.Err != nil {
		s += ": " + t.Err.Error()
	}
	return s
}

func eventsCmd(io stdio) *cobra.Command {
	var (
		df                   daemonFlags
		session              string
		jsonOut, follow, ack bool
		after                uint64
	)
	c := &cobra.Command{
		Use:   "events --session ID",
		Short: "Print what happened to a session's tasks",
		Long: `Print the events of a session's tasks that the daemon keeps: every change
of state (created, started, paused, resumed, waiting, done, failed,
canceled), numbered from 1. The daemon keeps them until they are
acknowledged: --ack acknowledges each after printing it, so that the next
events run starts after it (a consumer that dies before acknowledging sees
the event again). --after N starts after event N.

--follow keeps printing events as they happen, until Ctrl-C (exit 0) or
the daemon stops (exit 1). It attaches to the session: a second --follow on
the same session fails while the first is running.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("events takes no arguments")
			}
			if session == "" {
				return usagef("--session ID is required")
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			d := df.daemon()
			defer d.Close()
			ctx := c.Context()
			err := d.Events(ctx, session, ferry.EventsOptions{After: after, Follow: follow}, func(ev ferry.BackgroundEvent) error {
				if jsonOut {
					if err := printJSON(io, ev); err != nil {
						return err
					}
				} else {
					fmt.Fprintln(io.out, eventLine(ev))
				}
				if ack {
					return d.Ack(ctx, session, ev.Seq)
				}
				return nil
			})
			switch {
			case !follow:
				return err
			case ctx.Err() != nil && errors.Is(err, ctx.Err()):
				return nil // Ctrl-C is how --follow ends
			case err == nil:
				// A consumer relying on the stream must learn that it ended.
				return errors.New("the daemon ended the event stream (it is stopping)")
			}
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&session, "session", "", "the session `ID` (required)")
	fl.BoolVar(&jsonOut, "json", false, "print each event as a JSON line")
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing events as they happen")
	fl.BoolVar(&ack, "ack", false, "acknowledge each event once printed")
	fl.Uint64Var(&after, "after", 0, "start after event `N`")
	df.register(fl)
	return c
}

// eventLine is an event as events prints it without --json.
func eventLine(ev ferry.BackgroundEvent) string {
	s := fmt.Sprintf("%d %s %s %s", ev.Seq, ev.Time.Local().Format(time.DateTime), ev.Task, ev.Type)
	if r := ev.Result; r != nil {
		where := r.Path
		if r.Location != "" {
			where = r.Location
		}
		s += fmt.Sprintf(" %s (%s)", where, formatBytes(r.Size))
	}
	if ev.Err != nil {
		s += ": " + ev.Err.Error()
	}
	return s
}
