package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferryhq/ferry/internal/peer"
	"github.com/ferryhq/ferry/internal/peer/wan"
)

// Run is one timed download.
type Run struct {
	Tool     string
	Round    int // 1-based
	Wall     time.Duration
	CPU      time.Duration // user + system of the client
	MaxRSS   int64         // bytes
	ExitCode int
	// Bytes is what the run moved: the whole file when it completed,
	// else the bytes it had written (a download) or the server had
	// stored (an upload) when it was stopped.
	Bytes int64
	// Capped says the run hit the profile's time cap and was killed; its
	// throughput is Bytes / Wall and its result is not verified.
	Capped bool
	// Err is empty when the run completed and its result verified, or
	// was capped; else it says what went wrong.
	Err string
	// Metrics is the tool's own account of the run (ferry's -w line).
	Metrics string
	// Link is what the emulated link carried during the run.
	Link *wan.Stats
}

// Counted says the run's throughput counts: it completed and verified, or
// it was capped.
func (r Run) Counted() bool { return r.Err == "" }

// MiBps is the run's throughput in MiB/s of wall time.
func (r Run) MiBps() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Bytes) / (1 << 20) / r.Wall.Seconds()
}

// ProfileResult holds every run of one profile with one origin.
type ProfileResult struct {
	Name     string
	Describe string
	Origin   string // nginx or ferry-serve; for uploads ferry-serve or tusd
	// Upload says the tools sent the file to the server rather than
	// fetched it.
	Upload   bool
	Server   string // its version
	URL      string
	Size     int64
	TimeCap  time.Duration
	LinkRate int64  // bit/s; 0 without an emulated link
	Link     string // the emulated link's description
	RTT      time.Duration
	CC       string
	Setup    []string // commands that made the emulated link
	Tools    []string
	Runs     []Run
	// LinkTotal is what the link carried over the whole profile.
	LinkTotal *wan.Stats
	Skipped   string // why the profile did not run with this origin
	// Load is the machine's load average (1, 5, 15 min) before and after
	// the profile: other work on the machine shows here.
	LoadBefore, LoadAfter string
}

func runProfile(ctx context.Context, p Profile, origin string, tools []Tool, file testFile, opt options, deps startDeps) (pr ProfileResult, err error) {
	tools = p.tools(tools)
	pr = ProfileResult{
		Name:     p.Name,
		Describe: p.Describe,
		Origin:   origin,
		Size:     file.size,
		TimeCap:  opt.timeCap(p),
		LinkRate: p.LinkRate(),
	}
	for _, t := range tools {
		pr.Tools = append(pr.Tools, t.Name)
	}
	logf("profile %s, origin %s: starting (%s, cap %v per run)", p.Name, origin, formatSize(file.size), pr.TimeCap)
	pr.LoadBefore = loadAvg()
	defer func() { pr.LoadAfter = loadAvg() }()
	env, err := p.start(ctx, origin, file.dir, deps)
	if errors.Is(err, errUnsupported) {
		pr.Skipped = err.Error()
		logf("profile %s, origin %s: skipped: %v", p.Name, origin, err)
		return pr, nil
	}
	if err != nil {
		return pr, err
	}
	defer func() {
		if err := env.Close(); err != nil {
			logf("profile %s: teardown: %v", p.Name, err)
		}
	}()
	pr.Server = env.Origin
	pr.URL = env.BaseURL + "/" + file.name
	pr.CC = env.CC
	if env.Net != nil {
		pr.Link = env.Net.Config.Describe()
		pr.RTT = env.Net.RTT
		pr.Setup = env.Net.Setup
	}

	for round := 1; round <= opt.runs; round++ {
		// Interleave the tools and rotate who goes first, so that drift in
		// the machine's state (page cache, CPU clock) spreads over all.
		for i := range tools {
			t := tools[(i+round-1)%len(tools)]
			if ctx.Err() != nil {
				return pr, ctx.Err()
			}
			dir := filepath.Join(opt.workDir, fmt.Sprintf("%s-%s", p.Name, origin), fmt.Sprintf("%d-%s", round, t.Name))
			r := measure(ctx, env, t, pr.URL, dir, file, pr.TimeCap)
			r.Round = round
			pr.Runs = append(pr.Runs, r)
			if ctx.Err() != nil {
				return pr, ctx.Err()
			}
			pr.logRun(opt.runs, r)
		}
	}
	if env.Net != nil {
		if st, err := env.Net.Stats(); err == nil {
			pr.LinkTotal = &st
		}
	}
	return pr, nil
}

func (pr ProfileResult) logRun(rounds int, r Run) {
	head := fmt.Sprintf("%s %-10s round %d/%d:", pr.Name, r.Tool, r.Round, rounds)
	if pr.Upload {
		head = fmt.Sprintf("%s %s %-10s round %d/%d:", pr.Name, pr.Origin, r.Tool, r.Round, rounds)
	}
	if r.Err != "" {
		logf("%s FAILED after %.2f s: %s", head, r.Wall.Seconds(), r.Err)
		return
	}
	result := "sha-256 ok"
	if r.Capped {
		result = fmt.Sprintf("CAPPED with %s", formatSize(r.Bytes))
	}
	extra := ""
	if r.Link != nil {
		d := pr.data(*r.Link)
		extra += fmt.Sprintf("  link %s %d pkts (%d lost)", pr.dataDir(), d.Packets, d.Lost)
	}
	if r.Metrics != "" {
		extra += "  " + r.Metrics
	}
	logf("%s %6.2f s %8.2f MiB/s  peak RSS %6.1f MiB  cpu %5.2f s  %s%s", head, r.Wall.Seconds(), r.MiBps(),
		float64(r.MaxRSS)/(1<<20), r.CPU.Seconds(), result, extra)
}

// measure runs one download of file with tool t into a fresh directory and
// verifies the result, or, when the run hits timeCap, kills it and counts
// the bytes it wrote.
func measure(ctx context.Context, env *Env, t Tool, url, dir string, file testFile, timeCap time.Duration) Run {
	r := Run{Tool: t.Name, ExitCode: -1}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Err = err.Error()
		return r
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, file.name)

	c := runClient(ctx, env, t.Argv(url, out), dir, timeCap)
	r = newRun(t, c)
	if c.Capped {
		for _, f := range t.Partial(out) {
			r.Bytes = max(r.Bytes, dataBytes(f))
		}
		return r
	}
	if r.Err != "" {
		return r
	}

	fi, err := os.Stat(out)
	if err != nil {
		r.Err = "no result: " + err.Error()
		return r
	}
	if fi.Size() != file.size {
		r.Err = fmt.Sprintf("result has %d bytes, want %d", fi.Size(), file.size)
		return r
	}
	sum, err := peer.FileSHA256(out)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	if sum != file.sum {
		r.Err = fmt.Sprintf("sha256 %s, want %s", sum, file.sum)
		return r
	}
	r.Bytes = file.size
	return r
}

// newRun is the run of tool t that c was: its costs, how it ended, and
// the tool's own account.
func newRun(t Tool, c clientRun) Run {
	r := Run{Tool: t.Name, Wall: c.Wall, CPU: c.CPU, MaxRSS: c.MaxRSS, ExitCode: c.ExitCode, Link: c.Link, Capped: c.Capped, Err: c.Err}
	if t.Metrics != nil {
		r.Metrics = t.Metrics(c.Stdout)
	}
	return r
}

// clientRun is one client process's run and what it cost.
type clientRun struct {
	Wall     time.Duration
	CPU      time.Duration // user + system
	MaxRSS   int64         // bytes; the largest of the process and its waited-for children
	ExitCode int           // -1 when it did not exit by itself
	// Capped says the process reached the time cap and was killed.
	Capped bool
	// Err is empty when the process exited 0 or was capped; else it says
	// what went wrong ("interrupted" when ctx ended).
	Err            string
	Stdout, Stderr string
	// Link is what the emulated link carried during the run.
	Link *wan.Stats
}

// runClient runs argv on the client's side of env, in dir, timed, and kills
// its process group when it reaches timeCap or ctx ends.
func runClient(ctx context.Context, env *Env, argv []string, dir string, timeCap time.Duration) clientRun {
	r := clientRun{ExitCode: -1}
	// Start every run with no dirty pages from the previous one.
	syscall.Sync()

	var before wan.Stats
	if env.Net != nil {
		var err error
		if before, err = env.Net.Stats(); err != nil {
			r.Err = err.Error()
			return r
		}
	}

	argv = env.Wrap(argv)
	cctx, cancel := context.WithTimeout(ctx, timeCap)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	start := time.Now()
	err := cmd.Run()
	r.Wall = time.Since(start)
	if ps := cmd.ProcessState; ps != nil {
		r.ExitCode = ps.ExitCode()
		r.CPU = ps.UserTime() + ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.MaxRSS = ru.Maxrss << 10 // KiB on Linux
		}
	}
	if env.Net != nil {
		if after, err := env.Net.Stats(); err == nil {
			d := after.Sub(before)
			r.Link = &d
		}
	}
	r.Stdout, r.Stderr = stdout.String(), stderr.String()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.Err = "interrupted"
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		r.Capped = true
	case err != nil && !errors.As(err, &ee):
		r.Err = err.Error()
	case r.ExitCode != 0:
		r.Err = fmt.Sprintf("exit %d: %s", r.ExitCode, lastLine(r.Stderr+r.Stdout))
	}
	return r
}

// dataBytes counts the bytes of the file at path that hold data: it skips
// holes and preallocated, never written ranges (SEEK_DATA / SEEK_HOLE),
// so a partial download's file counts what was fetched, whether the tool
// preallocates it, writes it sparse, or writes it in order.
func dataBytes(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	size := fi.Size()
	fd := int(f.Fd())
	var total int64
	for off, n := int64(0), 0; off < size && n < 1<<20; n++ {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil { // ENXIO: no data after off
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		total += min(hole, size) - data
		off = hole
	}
	return total
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
