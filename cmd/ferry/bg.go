package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/internal/bgapi"
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

func (f *daemonFlags) stateDir() string {
	if f.state != "" {
		return f.state
	}
	return bgapi.DefaultStateDir()
}

func (f *daemonFlags) socketPath() string {
	if f.socket != "" {
		return f.socket
	}
	if s := os.Getenv("FERRY_SOCKET"); s != "" {
		return s
	}
	return bgapi.DefaultSocket(f.stateDir())
}

func (f *daemonFlags) client() *bgapi.Client { return bgapi.NewClient(f.socketPath()) }

// daemonError turns the daemon's refusal of a malformed request into a
// usage error: the request came from the command line.
func daemonError(err error) error {
	var e *bgapi.Error
	if errors.As(err, &e) && e.Problem.Type == bgapi.ProblemBadRequest {
		return usageError{err}
	}
	return err
}

// argsExactly and argsAtLeast check a command's arguments, failing as usage
// errors with msg.
func argsExactly(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s", msg)
		}
		return nil
	}
}

func argsAtLeast(n int, msg string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s", msg)
		}
		return nil
	}
}

func bgCmd(io stdio) *cobra.Command {
	c := &cobra.Command{
		Use:   "bg COMMAND",
		Short: "Hand a transfer to the daemon and return at once",
		Long: `Queue a download, an upload or an HLS download with the running daemon
(ferry daemon) and print the task's ID at once; the transfer goes on after
this command and the shell that ran it are gone. The flags are those of the
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

// bgFlags are what every bg command takes. Of transferFlags only -x, -H and
// --json are registered: the daemon's configuration covers the rest.
type bgFlags struct {
	daemonFlags
	transferFlags
	session   string
	priority  int
	notBefore string
	rate      int64 // --limit-rate, read by newTask
}

func (f *bgFlags) register(fl *pflag.FlagSet, connectionsUsage string, connectionsDefault int) {
	fl.IntVarP(&f.connections, "connections", "x", connectionsDefault, connectionsUsage)
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "add a request header `'K: V'` (repeatable)")
	fl.StringVar(&f.session, "session", "", "the session `ID` the task belongs to (required)")
	fl.IntVar(&f.priority, "priority", 0, "start before queued tasks of lower `N`")
	fl.StringVar(&f.limitRate, "limit-rate", "", "cap this task's speed at `RATE` bytes/s within the daemon's, e.g. 500k, 2M")
	fl.StringVar(&f.notBefore, "not-before", "", "hold the task until `TIME` (RFC 3339) or for a duration, e.g. 2h")
	fl.BoolVar(&f.jsonOut, "json", false, "print the whole task as JSON instead of its ID")
	f.daemonFlags.register(fl)
}

// newTask checks what all bg commands share and starts their request.
func (f *bgFlags) newTask(rawURL string) (bgapi.NewTask, error) {
	if f.session == "" {
		return bgapi.NewTask{}, usagef("--session ID is required")
	}
	if err := checkURL(rawURL); err != nil {
		return bgapi.NewTask{}, err
	}
	if f.connections < 0 {
		return bgapi.NewTask{}, usagef("-x must not be negative")
	}
	nb, err := parseNotBefore(f.notBefore, time.Now())
	if err != nil {
		return bgapi.NewTask{}, err
	}
	if f.rate, err = parseRate(f.limitRate); err != nil {
		return bgapi.NewTask{}, err
	}
	return bgapi.NewTask{Priority: f.priority, NotBefore: nb}, nil
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

// submit creates the task and prints its ID, or the task with --json.
func (f *bgFlags) submit(c *cobra.Command, io stdio, nt bgapi.NewTask) error {
	cl := f.client()
	defer cl.Close()
	t, err := cl.Create(c.Context(), f.session, nt)
	if err != nil {
		return daemonError(err)
	}
	if f.jsonOut {
		return printJSON(io, t)
	}
	fmt.Fprintln(io.out, t.ID)
	return nil
}

func printJSON(io stdio, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.out, "%s\n", b)
	return nil
}

// absPath makes a path absolute for the daemon, whose working directory is
// not ours.
func absPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return "", usagef("%s: %v", p, err)
	}
	return a, nil
}

func bgGetCmd(io stdio) *cobra.Command {
	var (
		f                bgFlags
		output, checksum string
		createDirs       bool
	)
	c := &cobra.Command{
		Use:   "get URL --session ID",
		Short: "Download a file in the background",
		Long: `Queue a download of URL with the daemon and print the task's ID. As with
ferry get, the file is named after the URL without -o, and appears under
its final name only once complete and verified.`,
		Args: argsExactly(1, "bg get takes exactly one URL"),
		RunE: func(c *cobra.Command, args []string) error {
			nt, err := f.newTask(args[0])
			if err != nil {
				return err
			}
			if toStdout(output) {
				return usagef("bg get writes a file: -o - is for ferry get")
			}
			req := &bgapi.GetRequest{URL: args[0], Path: output, Checksum: checksum, Connections: f.connections, CreateDirs: createDirs, RateLimit: f.rate}
			if req.Path == "" {
				if req.Path, err = defaultOutput(args[0]); err != nil {
					return err
				}
			}
			if req.Path, err = absPath(req.Path); err != nil {
				return err
			}
			if checksum != "" {
				if _, _, err := ferry.ParseChecksum(checksum); err != nil {
					return usageError{err}
				}
			}
			if req.Header, err = f.header(); err != nil {
				return err
			}
			nt.Get = req
			return f.submit(c, io, nt)
		},
	}
	fl := c.Flags()
	fl.SortFlags = false
	fl.StringVarP(&output, "output", "o", "", "write to `FILE` (default: named after the URL)")
	fl.BoolVar(&createDirs, "create-dirs", false, "create the missing directories of -o")
	fl.StringVar(&checksum, "checksum", "", "verify the result: `ALG=HEX` with ALG sha-256 or sha-512")
	f.register(fl, getConnectionsUsage, 0)
	return c
}

// putProtocols are the values of put's --protocol.
var putProtocols = []string{"auto", "tus", "ietf", "multipart"}

func bgPutCmd(io stdio) *cobra.Command {
	var (
		f                          bgFlags
		protocol, chunkSize, field string
		meta                       []string
	)
	c := &cobra.Command{
		Use:   "put FILE URL --session ID",
		Short: "Upload a file in the background",
		Long: `Queue an upload of FILE to URL with the daemon and print the task's ID.
URL is what ferry put takes: a tus or IETF resumable-upload endpoint, or a
multipart form.`,
		Args: argsExactly(2, "bg put takes a FILE and a URL"),
		RunE: func(c *cobra.Command, args []string) error {
			nt, err := f.newTask(args[1])
			if err != nil {
				return err
			}
			if !slices.Contains(putProtocols, protocol) {
				return usagef("--protocol %q: want one of %s", protocol, strings.Join(putProtocols, ", "))
			}
			// Checked here, where a wrong name is a typo to fix, rather than
			// as a failed task later.
			if fi, err := os.Stat(args[0]); err != nil {
				return usageError{err}
			} else if !fi.Mode().IsRegular() {
				return usagef("%s is not a regular file", args[0])
			}
			req := &bgapi.PutRequest{URL: args[1], Protocol: protocol, Connections: f.connections, FieldName: field, RateLimit: f.rate}
			if req.Metadata, err = parseMeta(meta); err != nil {
				return err
			}
			if req.Path, err = absPath(args[0]); err != nil {
				return err
			}
			if chunkSize != "" {
				n, err := parseSize(chunkSize)
				if err != nil || n <= 0 {
					return usagef("--chunk-size: invalid size %q", chunkSize)
				}
				req.ChunkSize = n
			}
			if req.Header, err = f.header(); err != nil {
				return err
			}
			nt.Put = req
			return f.submit(c, io, nt)
		},
	}
	fl := c.Flags()
	fl.SortFlags = false
	fl.StringVar(&protocol, "protocol", "auto", "auto, tus, ietf or multipart")
	fl.StringVar(&chunkSize, "chunk-size", "", chunkSizeUsage)
	registerFormFlags(fl, &field, &meta)
	f.register(fl, putConnectionsUsage, 1)
	return c
}

func bgHLSCmd(io stdio) *cobra.Command {
	var (
		f                           bgFlags
		dir, variant, maxBW, concat string
		liveDuration                time.Duration
		allowHoles                  bool
		maxSegments                 int
	)
	c := &cobra.Command{
		Use:   "hls URL -o DIR --session ID",
		Short: "Download an HLS stream in the background",
		Long: `Queue an HLS download of URL into DIR with the daemon and print the task's
ID. The flags mean what they mean for ferry hls; a live stream is recorded
until it ends, for --live-duration, or until the task is cancelled.`,
		Args: argsExactly(1, "bg hls takes one URL"),
		RunE: func(c *cobra.Command, args []string) error {
			nt, err := f.newTask(args[0])
			if err != nil {
				return err
			}
			if dir == "" {
				return usagef("bg hls needs -o DIR")
			}
			if liveDuration < 0 {
				return usagef("--live-duration must not be negative")
			}
			if err := checkMaxSegments(maxSegments); err != nil {
				return err
			}
			req := &bgapi.HLSRequest{
				URL: args[0], Variant: variant, Connections: f.connections,
				LiveDuration: bgapi.Duration(liveDuration), AllowHoles: allowHoles, MaxSegments: maxSegments,
				RateLimit: f.rate,
			}
			if req.Dir, err = absPath(dir); err != nil {
				return err
			}
			if req.Concat, err = absPath(concat); err != nil {
				return err
			}
			if maxBW != "" {
				n, err := parseBitRate(maxBW)
				if err != nil || n <= 0 {
					return usagef("--max-bandwidth: invalid rate %q", maxBW)
				}
				req.MaxBandwidth = n
			}
			if req.Header, err = f.header(); err != nil {
				return err
			}
			nt.HLS = req
			return f.submit(c, io, nt)
		},
	}
	fl := c.Flags()
	fl.SortFlags = false
	fl.StringVarP(&dir, "output", "o", "", "write into `DIR` (required)")
	fl.StringVar(&variant, "variant", "best", "`best`, worst, or a variant's 0-based index")
	fl.StringVar(&maxBW, "max-bandwidth", "", "leave out variants above `BPS` bits per second, e.g. 3M")
	fl.StringVar(&concat, "concat", "", "also join the segments into `FILE`")
	fl.DurationVar(&liveDuration, "live-duration", 0, "stop recording a live stream after `D`, e.g. 10m (0: until it ends)")
	fl.BoolVar(&allowHoles, "allow-holes", false, "succeed without segments that cannot be fetched (left out of the playlist)")
	registerMaxSegments(fl, &maxSegments)
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
			cl := df.client()
			defer cl.Close()
			tasks, err := cl.Tasks(c.Context(), session)
			if err != nil {
				return err
			}
			if jsonOut {
				if tasks == nil {
					tasks = []bgapi.Task{} // [] rather than null for an empty list
				}
				return printJSON(io, tasks)
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
func taskProgress(t bgapi.Task) string {
	if p := t.Progress; p != nil {
		if p.Expected < 0 {
			return formatBytes(p.Done) + " / ?"
		}
		return formatBytes(p.Done) + " / " + formatBytes(p.Expected)
	}
	if r := t.Result; r != nil && t.State == bgapi.Done {
		return formatBytes(r.Size) + " / " + formatBytes(r.Size)
	}
	return "-"
}

// taskWhat is ls's WHAT: "URL -> path", or "path -> URL" for an upload.
func taskWhat(t bgapi.Task) string {
	u, path, ok := taskEnds(t)
	if !ok {
		return "-"
	}
	if t.Kind == bgapi.KindPut {
		return path + " -> " + u
	}
	return u + " -> " + path
}

// taskState is ls's STATE: a task waiting for its host says for which, as
// the progress line of a transfer in the foreground does.
func taskState(t bgapi.Task, now time.Time) string {
	if t.State != bgapi.Waiting || t.NextTry.IsZero() {
		return string(t.State)
	}
	host := "the server"
	if u, _, ok := taskEnds(t); ok {
		if pu, err := url.Parse(u); err == nil && pu.Host != "" {
			host = pu.Host
		}
	}
	return fmt.Sprintf("waiting for %s (attempt %d, next in %s)", host, t.Tries, roundDelay(max(0, t.NextTry.Sub(now))))
}

// taskEnds reads a task's URL and local path (or directory) from its request.
func taskEnds(t bgapi.Task) (u, path string, ok bool) {
	// Request is the kind's spec; read whole NewTasks too.
	var nt bgapi.NewTask
	if json.Unmarshal(t.Request, &nt) == nil && nt.Kind() != "" {
		spec, err := nt.Spec()
		if err != nil {
			return "", "", false
		}
		return ferry.StoredTask{Kind: nt.Kind(), Spec: spec}.Ends()
	}
	return ferry.StoredTask{Kind: t.Kind, Spec: t.Request}.Ends()
}

// actCmd is pause, resume or cancel: act on each task named, print the
// state it is in then, and fail if any could not be acted on.
func actCmd(io stdio, name, short string, act func(*bgapi.Client) func(*cobra.Command, string) (*bgapi.Task, error)) *cobra.Command {
	var df daemonFlags
	c := &cobra.Command{
		Use:   name + " TASK...",
		Short: short,
		Args:  argsAtLeast(1, name+" takes one or more task IDs"),
		RunE: func(c *cobra.Command, ids []string) error {
			cl := df.client()
			defer cl.Close()
			do := act(cl)
			failed := 0
			for _, id := range ids {
				t, err := do(c, id)
				if err != nil {
					if errors.Is(err, bgapi.ErrNoDaemon) || c.Context().Err() != nil {
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
	return actCmd(io, "pause", "Pause background tasks (their state is kept)", func(cl *bgapi.Client) func(*cobra.Command, string) (*bgapi.Task, error) {
		return func(c *cobra.Command, id string) (*bgapi.Task, error) { return cl.Pause(c.Context(), id) }
	})
}

func resumeCmd(io stdio) *cobra.Command {
	return actCmd(io, "resume", "Resume paused background tasks", func(cl *bgapi.Client) func(*cobra.Command, string) (*bgapi.Task, error) {
		return func(c *cobra.Command, id string) (*bgapi.Task, error) { return cl.Resume(c.Context(), id) }
	})
}

func cancelCmd(io stdio) *cobra.Command {
	return actCmd(io, "cancel", "Cancel background tasks", func(cl *bgapi.Client) func(*cobra.Command, string) (*bgapi.Task, error) {
		return func(c *cobra.Command, id string) (*bgapi.Task, error) { return cl.Cancel(c.Context(), id) }
	})
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
			cl := df.client()
			defer cl.Close()
			ctx := c.Context()
			var (
				ids     = append([]string(nil), args...)
				seen    = map[string]bool{}
				final   []bgapi.Task
				notDone int
			)
			for _, id := range ids {
				seen[id] = true
			}
			for next := 0; ; {
				if session != "" {
					tasks, err := cl.Tasks(ctx, session)
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
					t, err := cl.Wait(ctx, ids[next])
					if err != nil {
						if errors.Is(err, bgapi.ErrNoDaemon) || ctx.Err() != nil {
							return err
						}
						fmt.Fprintf(io.err, "ferry: %s: %s\n", ids[next], printable(strings.TrimPrefix(err.Error(), "ferry: ")))
						notDone++
						continue
					}
					if t.State != bgapi.Done {
						notDone++
					}
					final = append(final, *t)
					if !jsonOut {
						fmt.Fprintln(io.out, taskOutcome(*t))
					}
				}
			}
			if jsonOut {
				if final == nil {
					final = []bgapi.Task{}
				}
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
func taskOutcome(t bgapi.Task) string {
	s := t.ID + " " + string(t.State)
	if t.Error != "" {
		s += ": " + t.Error
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
			cl := df.client()
			defer cl.Close()
			ctx := c.Context()
			var token string
			opts := bgapi.EventsOptions{After: after, Follow: follow, Attach: follow,
				OnOpen: func(t string) { token = t }}
			defer func() {
				if token != "" { // let go of the session now, not when the daemon notices
					rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					cl.Release(rctx, session, token)
					cancel()
				}
			}()
			err := cl.Events(ctx, session, opts, func(ev bgapi.Event) error {
				if jsonOut {
					if err := printJSON(io, ev); err != nil {
						return err
					}
				} else {
					fmt.Fprintln(io.out, eventLine(ev))
				}
				if ack {
					return cl.Ack(ctx, session, ev.Seq)
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
func eventLine(ev bgapi.Event) string {
	s := fmt.Sprintf("%d %s %s %s", ev.Seq, ev.Time.Local().Format(time.DateTime), ev.Task, ev.Type)
	if r := ev.Result; r != nil {
		where := r.Path
		if r.Location != "" {
			where = r.Location
		}
		s += fmt.Sprintf(" %s (%s)", where, formatBytes(r.Size))
	}
	if ev.Error != "" {
		s += ": " + ev.Error
	}
	return s
}
