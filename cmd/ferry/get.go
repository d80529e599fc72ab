package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryhq/ferry"
)

type getFlags struct {
	output, checksum, limitRate, write   string
	remoteName, cont, jsonOut, quiet     bool
	insecure, h2c                        bool
	connections, retries                 int
	headers                              []string
	connectTimeout, idleTimeout, maxTime time.Duration
	speedLimit                           string
	speedTime                            time.Duration
}

func getCmd(io stdio) *cobra.Command {
	var f getFlags
	c := &cobra.Command{
		Use:   "get URL",
		Short: "Download a file, resumably",
		Long: `Download URL to a file. Bytes go to FILE.part and the state to FILE.ferry
until the download is complete and verified; then FILE appears atomically.
Interrupted (Ctrl-C, kill, lost network), the same command run again continues.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("get takes exactly one URL")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error { return runGet(c, io, args[0], &f) },
	}
	fl := c.Flags()
	fl.SortFlags = false
	fl.StringVarP(&f.output, "output", "o", "", "write to `FILE`")
	fl.BoolVarP(&f.remoteName, "remote-name", "O", false, "name the file after the URL's last path segment (the default without -o)")
	fl.BoolVarP(&f.cont, "continue", "c", false, "continue a partial FILE that ferry did not start (like wget -c)")
	fl.IntVarP(&f.connections, "connections", "x", 0, "fetch over `N` connections in parallel (default: adapt, up to 8)")
	fl.StringVar(&f.checksum, "checksum", "", "verify the result: `ALG=HEX` with ALG sha-256 or sha-512 (exit 3 on mismatch)")
	fl.StringVar(&f.limitRate, "limit-rate", "", "cap the speed, e.g. 500k, 2M")
	fl.IntVar(&f.retries, "retry", 10, "retry up to `N` times in a row while no attempt moves the download forward (0: never)")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "add a request header `'K: V'` (repeatable)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the result and metrics as one JSON object on stdout")
	fl.StringVarP(&f.write, "write-out", "w", "", "print `FORMAT` on stdout at the end, with %{name} for the --json names")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress output")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", 30*time.Second, "timeout for connecting")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 60*time.Second, "give up an attempt when no byte moves for this long")
	fl.DurationVar(&f.maxTime, "max-time", 0, "give up the whole download after this long (0: 7 days)")
	fl.StringVar(&f.speedLimit, "speed-limit", "", "give up an attempt slower than this many bytes/s for --speed-time")
	fl.DurationVar(&f.speedTime, "speed-time", 30*time.Second, "window for --speed-limit")
	fl.BoolVarP(&f.insecure, "insecure", "k", false, "do not verify the server's TLS certificate")
	fl.BoolVar(&f.h2c, "http2-prior-knowledge", false, "speak HTTP/2 without TLS to http:// URLs")
	return c
}

func runGet(c *cobra.Command, io stdio, rawURL string, f *getFlags) error {
	cfg, req, err := f.build(rawURL)
	if err != nil {
		return err
	}
	s, err := ferry.NewSession(cfg)
	if err != nil {
		return err
	}
	ctx := c.Context()
	task, err := s.Download(ctx, req)
	if err != nil {
		return usageError{err}
	}
	return follow(ctx, io, task, output{
		url: req.URL, path: req.Path, quiet: f.quiet, jsonOut: f.jsonOut, write: f.write,
	})
}

// output says how a command reports on its task.
type output struct {
	url, path      string
	upload         bool
	quiet, jsonOut bool
	write          string
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
			pp.note("ferry: attempt %d failed (%v); retrying in %s", e.Attempt, e.Err, e.Delay.Round(time.Millisecond))
		case ferry.RestartEvent:
			pp.note("ferry: starting over: %s", e.Reason)
		}
	}
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
	if o.jsonOut {
		b, _ := json.Marshal(report)
		fmt.Fprintf(io.out, "%s\n", b)
	}
	if o.write != "" {
		fmt.Fprint(io.out, expandWriteOut(o.write, report))
	}
	return err
}

func (f *getFlags) build(rawURL string) (ferry.Config, ferry.DownloadRequest, error) {
	cfg := ferry.DefaultConfig()
	cfg.ConnectTimeout = f.connectTimeout
	cfg.IdleTimeout = f.idleTimeout
	if f.idleTimeout == 0 {
		cfg.IdleTimeout = -1
	}
	if f.maxTime > 0 {
		cfg.ResourceTimeout = f.maxTime
	}
	// --retry counts retries, like curl's: N retries are N+1 attempts.
	cfg.Retry.MaxAttempts = f.retries + 1
	if f.retries <= 0 {
		cfg.Retry.MaxAttempts = -1
	}
	if f.limitRate != "" {
		n, err := parseSize(f.limitRate)
		if err != nil || n <= 0 {
			return cfg, ferry.DownloadRequest{}, usagef("--limit-rate: invalid rate %q", f.limitRate)
		}
		cfg.RateLimit = n
	}
	if f.speedLimit != "" {
		n, err := parseSize(f.speedLimit)
		if err != nil {
			return cfg, ferry.DownloadRequest{}, usagef("--speed-limit: %v", err)
		}
		cfg.MinSpeed, cfg.MinSpeedTime = n, f.speedTime
	}
	if f.insecure {
		cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	cfg.HTTP2PriorKnowledge = f.h2c
	if f.remoteName && f.output != "" {
		return cfg, ferry.DownloadRequest{}, usagef("-o and -O exclude each other")
	}
	if f.connections < 0 {
		return cfg, ferry.DownloadRequest{}, usagef("-x must not be negative")
	}
	if f.connections > cfg.MaxConnsPerHost {
		cfg.MaxConnsPerHost = f.connections
	}

	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cfg, ferry.DownloadRequest{}, usagef("%q is not an http(s) URL", rawURL)
	}
	req := ferry.DownloadRequest{
		URL:         rawURL,
		Path:        f.output,
		Checksum:    f.checksum,
		Continue:    f.cont,
		Connections: f.connections,
		SHA256:      f.jsonOut || strings.Contains(f.write, "%{sha256}"),
		Header:      http.Header{},
	}
	if req.Path == "" {
		req.Path = remoteName(u)
	}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return cfg, req, usagef("-H %q: want 'Name: value'", h)
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if f.checksum != "" {
		if _, _, err := ferry.ParseChecksum(f.checksum); err != nil {
			return cfg, req, usageError{err}
		}
	}
	return cfg, req, nil
}

// remoteName is the file name -O derives from a URL: its last path segment,
// never a path that could leave the current directory.
func remoteName(u *url.URL) string {
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == ".." || name == "" || strings.ContainsAny(name, `\`) {
		return "index.html"
	}
	return name
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
