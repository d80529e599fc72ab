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

	"github.com/ferryhq/ferry/internal/peer"
)

// Run is one timed download.
type Run struct {
	Tool     string
	Round    int // 1-based
	Wall     time.Duration
	CPU      time.Duration // user + system of the client
	MaxRSS   int64         // bytes
	ExitCode int
	Err      string // empty when the run succeeded and the result verified
}

// MiBps is the run's throughput in MiB/s of wall time.
func (r Run) MiBps(size int64) float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(size) / (1 << 20) / r.Wall.Seconds()
}

// ProfileResult holds every run of one profile.
type ProfileResult struct {
	Name     string
	Describe string
	Origin   string
	URL      string
	Tools    []string
	Runs     []Run
}

func runProfile(ctx context.Context, p Profile, tools []Tool, file testFile, opt options) (ProfileResult, error) {
	logf("profile %s: starting", p.Name())
	env, err := p.Start(ctx, file.dir)
	if err != nil {
		return ProfileResult{}, err
	}
	defer env.Close()

	pr := ProfileResult{
		Name:     p.Name(),
		Describe: p.Describe(),
		Origin:   env.Origin,
		URL:      env.BaseURL + "/" + file.name,
	}
	for _, t := range tools {
		pr.Tools = append(pr.Tools, t.Name)
	}
	// A generous bound: 1 MiB/s at the very least, and never under 5 min.
	timeout := max(5*time.Minute, time.Duration(file.size>>20)*time.Second)

	for round := 1; round <= opt.runs; round++ {
		// Interleave the tools and rotate who goes first, so that drift in
		// the machine's state (page cache, CPU clock) spreads over all.
		for i := range tools {
			t := tools[(i+round-1)%len(tools)]
			if ctx.Err() != nil {
				return pr, ctx.Err()
			}
			out := filepath.Join(opt.workDir, fmt.Sprintf("%s-%s-%d.bin", p.Name(), t.Name, round))
			r := measure(ctx, env, t, pr.URL, out, file, timeout)
			r.Round = round
			pr.Runs = append(pr.Runs, r)
			if r.Err != "" {
				logf("%s %-10s round %d/%d: FAILED after %.2f s: %s", p.Name(), t.Name, round, opt.runs, r.Wall.Seconds(), r.Err)
				continue
			}
			logf("%s %-10s round %d/%d: %6.2f s %8.1f MiB/s  peak RSS %6.1f MiB  cpu %5.2f s  sha-256 ok",
				p.Name(), t.Name, round, opt.runs, r.Wall.Seconds(), r.MiBps(file.size),
				float64(r.MaxRSS)/(1<<20), r.CPU.Seconds())
		}
	}
	return pr, nil
}

// measure runs one download of file with tool t and verifies the result.
func measure(ctx context.Context, env *Env, t Tool, url, out string, file testFile, timeout time.Duration) Run {
	r := Run{Tool: t.Name, ExitCode: -1}
	cleanup := func() {
		os.Remove(out)
		for _, f := range t.Leftovers(out) {
			os.Remove(f)
		}
	}
	cleanup()
	defer cleanup()
	// Start every run with no dirty pages from the previous one.
	syscall.Sync()

	argv := env.Wrap(t.Argv(url, out))
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second

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
	var ee *exec.ExitError
	switch {
	case cctx.Err() != nil && ctx.Err() == nil:
		r.Err = fmt.Sprintf("timed out after %v", timeout)
	case err != nil && !errors.As(err, &ee):
		r.Err = err.Error()
	case r.ExitCode != 0:
		r.Err = fmt.Sprintf("exit %d: %s", r.ExitCode, lastLine(stderr.String()))
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
	}
	return r
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
