// Command bench measures ferry against real peers and writes
// docs/BENCHMARKS.md.
//
//	go run ./bench [-size 1GiB] [-runs 3] [-profiles loopback] [-tools curl,ferry] [-out docs/BENCHMARKS.md]
//
// A benchmark is a set of profiles (the network between client and origin:
// loopback now, emulated WAN links later) times a set of tools (curl,
// ferry, ...). For every profile the origin (nginx) serves one file of
// random bytes; every tool downloads it -runs times, interleaved with the
// others, and each run's wall time, throughput and peak RSS are recorded
// and its result's sha-256 verified.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

type options struct {
	size     int64
	runs     int
	profiles []string
	tools    []string
	out      string
	cacheDir string
	workDir  string
	ferryBin string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		opt      options
		sizeFlag = flag.String("size", "1GiB", "size of the test file (e.g. 64MiB, 1GiB)")
		profiles = flag.String("profiles", "loopback", "comma-separated network profiles: "+strings.Join(profileNames(), ", "))
		tools    = flag.String("tools", "curl,ferry", "comma-separated tools: "+strings.Join(toolNames(), ", "))
	)
	flag.IntVar(&opt.runs, "runs", 3, "downloads per tool and profile")
	flag.StringVar(&opt.out, "out", "docs/BENCHMARKS.md", "markdown report, relative to the module root (empty: none)")
	flag.StringVar(&opt.cacheDir, "cache", defaultCacheDir(), "directory keeping the test files between runs")
	flag.StringVar(&opt.workDir, "work", "", "directory for downloaded files (default: a temporary directory)")
	flag.StringVar(&opt.ferryBin, "ferry", "", "ferry binary to measure (default: build ./cmd/ferry)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: go run ./bench [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if opt.size, err = parseSize(*sizeFlag); err != nil {
		return err
	}
	if opt.runs < 1 {
		return fmt.Errorf("-runs must be at least 1")
	}
	opt.profiles = splitList(*profiles)
	opt.tools = splitList(*tools)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := peer.ModuleRoot()
	if err != nil {
		return err
	}

	var profs []Profile
	for _, name := range opt.profiles {
		p, ok := lookupProfile(name)
		if !ok {
			return fmt.Errorf("unknown profile %q (have: %s)", name, strings.Join(profileNames(), ", "))
		}
		profs = append(profs, p)
	}

	tmp, err := os.MkdirTemp("", "ferry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	if opt.ferryBin == "" {
		logf("building ferry")
		if opt.ferryBin, err = peer.BuildFerry(ctx, tmp); err != nil {
			return err
		}
	} else if opt.ferryBin, err = filepath.Abs(opt.ferryBin); err != nil {
		return err
	}

	var toolList []Tool
	for _, name := range opt.tools {
		t, err := lookupTool(name, opt.ferryBin)
		if err != nil {
			return err
		}
		toolList = append(toolList, t)
	}

	if opt.workDir == "" {
		opt.workDir = filepath.Join(tmp, "work")
	}
	if err := os.MkdirAll(opt.workDir, 0o755); err != nil {
		return err
	}

	file, err := ensureTestFile(opt.cacheDir, opt.size)
	if err != nil {
		return err
	}

	rep := &Report{
		Command: commandLine(),
		Started: time.Now().UTC(),
		Size:    opt.size,
		Runs:    opt.runs,
		Machine: machineInfo(ctx, toolList),
	}
	for _, p := range profs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		pr, err := runProfile(ctx, p, toolList, file, opt)
		if err != nil {
			return fmt.Errorf("profile %s: %w", p.Name(), err)
		}
		rep.Profiles = append(rep.Profiles, pr)
	}
	rep.Finished = time.Now().UTC()

	fmt.Println()
	fmt.Print(rep.Text())
	if opt.out != "" {
		path := opt.out
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(rep.Markdown()), 0o644); err != nil {
			return err
		}
		logf("wrote %s", path)
	}
	if n := rep.Failures(); n > 0 {
		return fmt.Errorf("%d run(s) failed", n)
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func defaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ferry-bench")
	}
	return filepath.Join(os.TempDir(), "ferry-bench-cache")
}

// commandLine is the command that reproduces this run, as written in the
// report.
func commandLine() string {
	parts := []string{"go", "run", "./bench"}
	for _, a := range os.Args[1:] {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
