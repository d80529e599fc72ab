package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryhq/ferry"
)

type getFlags struct {
	transferFlags
	req                getRequest
	speedLimit         string
	remoteName, cont   bool
	head               bool
	maxTime, speedTime time.Duration
}

// getRequest are the flags of a download's request, of get and bg get.
type getRequest struct {
	output, checksum string
	createDirs       bool
}

func (g *getRequest) register(fl *pflag.FlagSet, outputUsage string) {
	fl.StringVarP(&g.output, "output", "o", "", outputUsage)
	fl.BoolVar(&g.createDirs, "create-dirs", false, "create the missing directories of -o")
	fl.StringVar(&g.checksum, "checksum", "", "verify the result: `ALG=HEX` with ALG sha-256 or sha-512 (exit 3 on mismatch)")
}

// build is the request for rawURL with the request flags rf.
func (g *getRequest) build(rawURL string, rf *requestFlags) (ferry.DownloadRequest, error) {
	if err := checkURL(rawURL); err != nil {
		return ferry.DownloadRequest{}, err
	}
	if err := rf.check(); err != nil {
		return ferry.DownloadRequest{}, err
	}
	req := ferry.DownloadRequest{URL: rawURL, Path: g.output, CreateDirs: g.createDirs, Checksum: g.checksum, Connections: rf.connections}
	var err error
	if req.Path == "" {
		if req.Path, err = defaultOutput(rawURL); err != nil {
			return req, err
		}
	}
	if toStdout(req.Path) {
		req.Path = "-" // the name reports give stdout; runGet sets the writer
	}
	if req.Header, err = rf.header(); err != nil {
		return req, err
	}
	if g.checksum != "" {
		if _, _, err := ferry.ParseChecksum(g.checksum); err != nil {
			return req, usageError{err}
		}
	}
	return req, nil
}

func getCmd(io stdio) *cobra.Command {
	var f getFlags
	c := &cobra.Command{
		Use:   "get URL",
		Short: "Download a file, resumably",
		Long: `Download URL to a file. Bytes go to FILE.part and the state to FILE.ferry
until the download is complete and verified; then FILE appears atomically.
Interrupted (Ctrl-C, kill, lost network), the same command run again continues.

-o DIR (or a path ending in /) saves inside DIR under the URL's last path
segment, made safe (no leading dot, no control characters), as without -o.
A missing directory is an error before the first byte unless --create-dirs.
-o - writes the body to stdout, and -o /dev/stdout, a device or a FIFO is
written in place: one connection, no .part or .ferry file, no resume, and
--json and -w go to stderr when stdout carries the body.

ferry replaces only regular files and follows a symbolic link at FILE only
to a directory, device or FIFO, when you or root own the link; it writes to
a device or FIFO only when you or root own it too. A link or anything but a
regular file of yours at FILE.part or FILE.ferry is refused.`,
		Args: argsExactly(1, "get takes exactly one URL"),
		RunE: func(c *cobra.Command, args []string) error {
			if f.head {
				return runHead(c, io, args[0], &f)
			}
			return runGet(c, io, args[0], &f)
		},
	}
	fl := c.Flags()
	fl.SortFlags = false
	f.req.register(fl, "write to `FILE`, into a directory, or - for stdout")
	fl.BoolVarP(&f.head, "head", "I", false, "fetch the headers only (HEAD) and print them, as curl -I")
	fl.BoolVarP(&f.remoteName, "remote-name", "O", false, "name the file after the URL's last path segment (the default without -o)")
	fl.BoolVarP(&f.cont, "continue", "c", false, "continue a partial FILE that ferry did not start (like wget -c)")
	f.register(fl, "download", getConnectionsUsage, 0)
	durationVar(fl, &f.maxTime, "max-time", 0, "give up the whole download after this long, in seconds or as a duration (0: 7 days)")
	fl.StringVar(&f.speedLimit, "speed-limit", "", "give up an attempt slower than this many bytes/s for --speed-time")
	durationVar(fl, &f.speedTime, "speed-time", 30*time.Second, "window for --speed-limit, in seconds or as a duration")
	return c
}

func runGet(c *cobra.Command, io stdio, rawURL string, f *getFlags) error {
	cfg, req, err := f.build(rawURL)
	if err != nil {
		return err
	}
	if toStdout(f.req.output) {
		req.Writer = io.out
	}
	s, err := ferry.NewSession(cfg)
	if err != nil {
		return err
	}
	ctx := c.Context()
	task, err := s.Download(ctx, req)
	if errors.Is(err, ferry.ErrMissingDir) {
		return usagef("%v (--create-dirs creates it)", err)
	}
	if err != nil {
		return requestError(err)
	}
	o := f.reportTo(req.URL, req.Path, false)
	if req.Writer != nil {
		o.reportOut = io.err // stdout carries the body
	}
	return f.keepCookies(io, follow(ctx, io, task, o))
}

// toStdout reports whether -o names stdout: "-", or stdout by its name in
// /dev (which, when stdout is a regular file, is a link to that file).
func toStdout(output string) bool {
	switch output {
	case "-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1":
		return true
	}
	return false
}

// output says how a command reports on its task.
type output struct {
	url, path      string
	upload         bool
	quiet, jsonOut bool
	verbose        bool // request and response heads on stderr
	write          string
	reportOut      io.Writer // where --json and -w go: stdout unless it carries the body
}

// follow shows a task's progress until it ends, then prints the --json
// report or the -w line, and returns the task's error.
func follow(ctx context.Context, io stdio, task *ferry.Task, o output) error {
	pp := newProgressPrinter(io.err, o.quiet, path.Base(o.path))
	for ev := range task.Events() {
		switch e := ev.(type) {
		case ferry.ProgressEvent:
			pp.update(e.Progress)
		case ferry.RetryEvent:
			pp.retry(e)
		case ferry.RestartEvent:
			pp.note("ferry: starting over: %s", e.Reason)
		case ferry.RequestEvent:
			if o.verbose {
				pp.say(verboseHead("> ", e.Method+" "+e.URL, e.Header)...)
			}
		case ferry.ResponseEvent:
			if o.verbose {
				pp.say(verboseHead("< ", fmt.Sprintf("%s %d %s", e.Proto, e.StatusCode, http.StatusText(e.StatusCode)), e.Header)...)
			}
		}
	}
	return finish(ctx, io, pp, task, o)
}

// finish reports a task whose events have ended: the last progress line,
// the note that an interrupted one continues, --json and -w.
func finish(ctx context.Context, io stdio, pp *progressPrinter, task *ferry.Task, o output) error {
	// The event stream has ended, so the task has: Wait returns at once.
	res, err := task.Wait(context.Background())
	if err == nil {
		pp.finish(task.Progress())
	}
	report := newReport(o.url, o.path, o.upload, task, res, err)
	if err != nil && ctx.Err() != nil {
		// Not progress: said even with -q, since the exit code alone (130)
		// does not tell that the state was kept.
		pp.quiet = false
		pp.note("ferry: interrupted; run the same command again to continue")
		err = fmt.Errorf("%w: %w", errReported, err)
	}
	out := o.reportOut
	if out == nil {
		out = io.out
	}
	if o.jsonOut {
		b, _ := json.Marshal(report)
		fmt.Fprintf(out, "%s\n", b)
	}
	if o.write != "" {
		fmt.Fprint(out, expandWriteOut(o.write, report))
	}
	return err
}

func (f *getFlags) build(rawURL string) (ferry.Config, ferry.DownloadRequest, error) {
	cfg, err := f.config(rawURL)
	if err != nil {
		return cfg, ferry.DownloadRequest{}, err
	}
	if f.maxTime > 0 {
		cfg.ResourceTimeout = f.maxTime
	}
	if f.speedLimit != "" {
		n, err := parseSize(f.speedLimit)
		if err != nil {
			return cfg, ferry.DownloadRequest{}, usagef("--speed-limit: %v", err)
		}
		cfg.MinSpeed, cfg.MinSpeedTime = n, f.speedTime
	}
	if f.remoteName && f.req.output != "" {
		return cfg, ferry.DownloadRequest{}, usagef("-o and -O exclude each other")
	}
	req, err := f.req.build(rawURL, &f.requestFlags)
	req.Continue = f.cont
	req.SHA256 = f.jsonOut || strings.Contains(f.write, "%{sha256}")
	return cfg, req, err
}

// defaultOutput is where get and bg get save rawURL without -o: under the
// URL's name (ferry.RemoteName) in the current directory. A directory of
// that name is refused: the URL names a file, and saving inside the
// directory would surprise.
func defaultOutput(rawURL string) (string, error) {
	name := ferry.RemoteName(rawURL)
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		return "", usagef("%s is a directory here: name the file with -o", name)
	}
	return name, nil
}

// errorString is the "error" member of a report.
func errorString(err error) string {
	if err == nil {
		return ""
	}
	var fe *ferry.Error
	if errors.As(err, &fe) {
		return fe.Error()
	}
	return err.Error()
}

// runHead sends a HEAD for rawURL and prints the answer's status line and
// header, as curl -I does; a status of 400 or more fails the command.
func runHead(c *cobra.Command, io stdio, rawURL string, f *getFlags) error {
	s, header, err := f.session(rawURL)
	if err != nil {
		return err
	}
	ctx := c.Context()
	task, err := s.Data(ctx, ferry.DataRequest{URL: rawURL, Method: http.MethodHead, Header: header})
	if err != nil {
		return requestError(err)
	}
	o := f.reportTo(rawURL, "-", false)
	o.reportOut = io.err // stdout carries the header
	err = follow(ctx, io, task, o)
	if res, _ := task.Wait(ctx); res != nil {
		fmt.Fprintf(io.out, "%s %d %s\r\n", res.Proto, res.StatusCode, http.StatusText(res.StatusCode))
		res.Header.Write(io.out)
		io.out.Write([]byte("\r\n"))
		if err == nil && res.StatusCode >= 400 {
			err = fmt.Errorf("the server answered %d %s", res.StatusCode, http.StatusText(res.StatusCode))
		}
	}
	return f.keepCookies(io, err)
}

// verboseHead is a request's or response's head as -v shows it, a line
// each, after prefix, with the values of credentials masked.
func verboseHead(prefix, first string, h http.Header) []string {
	lines := []string{prefix + first}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			if transfer.IsCredential(k) {
				v = "[masked]"
			}
			lines = append(lines, prefix+k+": "+v)
		}
	}
	return lines
}
