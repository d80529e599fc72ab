// Command bench measures ferry against real peers and writes
// docs/BENCHMARKS.md and docs/benchmarks.svg. Each subcommand measures one
// thing and writes its own part of the report, keeping the others:
//
//	go run ./bench [get] [-profiles loopback,wan50,wan50-loss1,capped,big] [-tools curl,ferry-x8,...]
//	                     [-runs 3] [-origins nginx,ferry-serve] [-quick] [-sizes wan50=64MiB] [-timecaps capped=60s]
//
// get (the default) is a set of profiles (the network between client and
// origin: loopback, emulated WAN links, a per-connection rate cap, a 4 GiB
// file for memory) times a set of tools (curl, wget2, aria2c, ferry with
// one, eight or adaptive connections). For every profile the origin serves
// one file of random bytes, sized for the profile; every tool downloads it
// -runs times, interleaved with the others, and each run's wall time,
// throughput, peak RSS and CPU are recorded and its result's sha-256
// verified. A run that hits the profile's time cap is killed and counted
// by the bytes it wrote.
//
// The WAN profiles need root: they build network namespaces, a router
// with tc tbf and a delay/loss forwarder (see internal/peer/wan).
//
//	go run ./bench put [-profiles loopback,wan50,wan50-loss1] [-servers ferry-serve,tusd] [-tools ...] [-runs 3]
//
// measures uploads the same way: ferry put (its default, -x 1, -x 4),
// tus-js-client (serial and with parallelUploads 4) and curl speaking tus
// (a POST and one PATCH) into ferry serve and tusd (see putbench.go).
//
//	go run ./bench hls [-runs 3] [-timecap 4m]
//
// measures the download of a 300-segment HLS stream on wan50 with ferry
// hls, yt-dlp and ffmpeg (see hlsbench.go).
//
//	go run ./bench daemon [-tasks 10000]
//
// measures the background daemon with many queued tasks: its RSS, and its
// recovery after kill -9 (see daemonbench.go).
//
//	go run ./bench stream [-duration 20s]
//
// measures the producer-to-processor latency of live streams on loopback
// (see streamlat.go).
//
// Every subcommand takes -ferry (the binary to measure, by default a build
// of ./cmd/ferry) and -out (the report; empty for none), so that two
// builds can be compared in one sitting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
	"github.com/ferryhq/ferry/internal/peer/wan"
)

// A mode is a subcommand: its flags, and what it runs once they are parsed.
type mode struct {
	name, summary string
	flags         func(fs *flag.FlagSet, c *common) (run func(ctx context.Context) error)
}

var modes = []mode{
	{"get", "downloads: ferry get vs curl, wget2, aria2c over loopback, emulated WAN links, a capped origin", getFlags},
	{"put", "uploads: ferry put vs tus-js-client and curl into ferry serve and tusd, over loopback and emulated WAN links", putFlags},
	{"hls", "HLS: ferry hls vs yt-dlp and ffmpeg, 300-segment VODs over the 50 ms link", hlsFlags},
	{"daemon", "the background daemon with many queued tasks: RSS, recovery after kill -9", daemonFlags},
	{"stream", "live streams on loopback: producer-to-processor latency", streamFlags},
	{"data", "many small data tasks against nginx on loopback vs a plain net/http client", dataFlags},
}

// common are the flags every mode has, and the module root that relative
// report paths are in.
type common struct {
	ferryBin string
	out      string
	cacheDir string
	workDir  string
	root     string
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	name := "get"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	i := slices.IndexFunc(modes, func(m mode) bool { return m.name == name })
	if i < 0 {
		usage(os.Stderr)
		return fmt.Errorf("unknown subcommand %q", name)
	}
	m := modes[i]
	fs := flag.NewFlagSet(m.name, flag.ExitOnError)
	var c common
	fs.StringVar(&c.ferryBin, "ferry", "", "ferry binary to measure (default: build ./cmd/ferry)")
	fs.StringVar(&c.out, "out", "docs/BENCHMARKS.md", "markdown report, relative to the module root (empty: none)")
	fs.StringVar(&c.cacheDir, "cache", defaultCacheDir(), "directory keeping test files between runs")
	fs.StringVar(&c.workDir, "work", "", "directory for downloaded files (default: a temporary directory)")
	runMode := m.flags(fs, &c)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./bench %s [flags]: %s\n\n", m.name, m.summary)
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if fs.NArg() > 0 {
		fs.Usage()
		os.Exit(2)
	}
	var err error
	if c.root, err = peer.ModuleRoot(); err != nil {
		return err
	}
	if c.out != "" {
		c.out = inRoot(c.root, c.out)
	}

	// The first SIGINT or SIGTERM cancels ctx: the run in progress is
	// killed and every deferred teardown (origin, namespaces, forwarder)
	// runs before the program exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	return runMode(ctx)
}

func usage(w *os.File) {
	fmt.Fprintln(w, "usage: go run ./bench [subcommand] [flags]")
	for _, m := range modes {
		fmt.Fprintf(w, "  %-7s %s\n", m.name, m.summary)
	}
	fmt.Fprintln(w, "get is the default; go run ./bench SUBCOMMAND -h lists its flags")
}

// scratch makes the mode's temporary directory, which the caller removes,
// and sets c.ferryBin to the ferry to measure: the one -ferry names, made
// absolute, or a build of ./cmd/ferry in the directory.
func (c *common) scratch(ctx context.Context, mode string) (string, error) {
	tmp, err := os.MkdirTemp("", "ferry-bench-"+mode+"-")
	if err != nil {
		return "", err
	}
	if c.ferryBin != "" {
		c.ferryBin, err = filepath.Abs(c.ferryBin)
	} else {
		logf("building ferry")
		c.ferryBin, err = peer.BuildFerry(ctx, tmp)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return tmp, nil
}

// wanForwarder builds the WAN links' delay/loss forwarder in dir and
// removes the namespaces an earlier run that crashed left.
func wanForwarder(ctx context.Context, dir string) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("the WAN profiles need root (network namespaces)")
	}
	logf("building the WAN forwarder")
	fwd, err := wan.BuildForwarder(ctx, dir)
	if err != nil {
		return "", err
	}
	return fwd, wan.Cleanup("", logf)
}

// writeSection puts text, section s of the report with its markers, into
// the markdown file out (nothing when out is ""): in place of the section
// it has, or else after the first of the sections in after that it has.
func writeSection(out string, s docSection, text string, after ...docSection) error {
	if out == "" {
		return nil
	}
	old, err := os.ReadFile(out)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	doc, err := s.with(string(old), text, after...)
	if err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	if err := writeFile(out, []byte(doc)); err != nil {
		return err
	}
	logf("wrote %s", out)
	return nil
}

type options struct {
	common
	runs     int
	profiles []Profile
	origins  []string
	tools    []string
	quick    bool
	sizeAll  int64
	sizes    map[string]int64
	capAll   time.Duration
	caps     map[string]time.Duration
	chart    string
	baseline string // a second ferry binary, measured as NAME@base
	hold     string
	holdFor  time.Duration
}

// size is the test file size for profile p.
func (o options) size(p Profile) int64 {
	if s, ok := o.sizes[p.Name]; ok {
		return s
	}
	if o.sizeAll > 0 {
		return o.sizeAll
	}
	if o.quick {
		return p.QuickSize
	}
	return p.Size
}

// timeCap is the time cap of one run in profile p.
func (o options) timeCap(p Profile) time.Duration {
	if c, ok := o.caps[p.Name]; ok {
		return c
	}
	if o.capAll > 0 {
		return o.capAll
	}
	if o.quick {
		return p.QuickCap
	}
	return p.TimeCap
}

// getFlags is the get mode: every tool downloads the test file of every
// profile -runs times, interleaved.
func getFlags(fs *flag.FlagSet, c *common) func(context.Context) error {
	opt := &options{}
	var (
		sizeFlag  = fs.String("size", "", "test file size for every profile (e.g. 64MiB, 1GiB); default: each profile's own")
		sizesFlag = fs.String("sizes", "", "per-profile sizes, e.g. wan50=512MiB,capped=64MiB")
		capFlag   = fs.Duration("timecap", 0, "time cap of one run for every profile; default: each profile's own")
		capsFlag  = fs.String("timecaps", "", "per-profile time caps, e.g. wan50-loss1=90s")
		profFlag  = fs.String("profiles", strings.Join(profileNames(), ","), "comma-separated network profiles: "+strings.Join(profileNames(), ", "))
		toolFlag  = fs.String("tools", "", "comma-separated tools: "+strings.Join(toolNames(), ", ")+" (default "+strings.Join(defaultTools, ",")+"; wget2 if installed)")
		origFlag  = fs.String("origins", "nginx", "comma-separated origins: "+strings.Join(origins, ", "))
		chartFlag = fs.String("chart", "docs/benchmarks.svg", "SVG chart, relative to the module root (empty: none; -quick writes none unless given)")
	)
	fs.IntVar(&opt.runs, "runs", 3, "downloads per tool and profile")
	fs.BoolVar(&opt.quick, "quick", false, "smoke run: small files, short caps, 1 round, every profile; writes no report unless -out is given")
	fs.StringVar(&opt.baseline, "baseline", "", "also measure the ferry tools with `FERRY`, an earlier build, as NAME@base, interleaved")
	fs.StringVar(&opt.hold, "hold", "", "bring `PROFILE` up with its origin, print how to reach it, and wait for Ctrl-C (or -hold-for)")
	fs.DurationVar(&opt.holdFor, "hold-for", 30*time.Minute, "longest -hold lasts")
	return func(ctx context.Context) error {
		opt.common = *c
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if err := opt.parse(set, *sizeFlag, *sizesFlag, *capFlag, *capsFlag, *profFlag, *toolFlag, *origFlag, *chartFlag); err != nil {
			return err
		}
		return runGet(ctx, opt)
	}
}

// parse fills opt from the get mode's flags; set holds the flags given.
func (opt *options) parse(set map[string]bool, size, sizes string, timeCap time.Duration, caps, profiles, tools, origs, chart string) error {
	var err error
	if size != "" {
		if opt.sizeAll, err = parseSize(size); err != nil {
			return err
		}
	}
	if opt.sizes, err = parsePerProfile(sizes, parseSize); err != nil {
		return fmt.Errorf("-sizes: %w", err)
	}
	opt.capAll = timeCap
	if opt.caps, err = parsePerProfile(caps, time.ParseDuration); err != nil {
		return fmt.Errorf("-timecaps: %w", err)
	}
	if opt.quick {
		if !set["runs"] {
			opt.runs = 1
		}
		if !set["out"] {
			opt.out = ""
		}
		if !set["chart"] {
			chart = ""
		}
	}
	if set["out"] && !set["chart"] {
		// A report written elsewhere takes its chart along, so a partial
		// run never overwrites the published one.
		chart = ""
		if opt.out != "" {
			chart = strings.TrimSuffix(opt.out, filepath.Ext(opt.out)) + ".svg"
		}
	}
	opt.chart = chart
	if opt.runs < 1 {
		return fmt.Errorf("-runs must be at least 1")
	}
	for _, name := range splitList(profiles) {
		p, ok := lookupProfile(name)
		if !ok {
			return fmt.Errorf("unknown profile %q (have: %s)", name, strings.Join(profileNames(), ", "))
		}
		opt.profiles = append(opt.profiles, p)
	}
	if opt.hold != "" {
		p, ok := lookupProfile(opt.hold)
		if !ok {
			return fmt.Errorf("-hold: unknown profile %q", opt.hold)
		}
		opt.profiles = []Profile{p}
	}
	for _, o := range splitList(origs) {
		if !slices.Contains(origins, o) {
			return fmt.Errorf("unknown origin %q (have: %s)", o, strings.Join(origins, ", "))
		}
		opt.origins = append(opt.origins, o)
	}
	if tools == "" {
		opt.tools = defaultToolList()
	} else {
		opt.tools = splitList(tools)
	}
	return nil
}

// runGet measures the get mode and writes its report and chart, carrying
// the other modes' sections over.
func runGet(ctx context.Context, opt *options) error {
	tmp, err := opt.scratch(ctx, "get")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	deps := startDeps{ferryBin: opt.ferryBin}
	if slices.ContainsFunc(opt.profiles, func(p Profile) bool { return p.Link != nil }) {
		if deps.forwarder, err = wanForwarder(ctx, tmp); err != nil {
			return fmt.Errorf("%w; choose -profiles loopback,capped otherwise", err)
		}
	}

	// The longest a profile can take: every run at its cap, plus slack
	// (twice the tools, for a baseline).
	for _, p := range opt.profiles {
		d := time.Duration(2*opt.runs*len(opt.tools)*len(opt.origins))*(opt.timeCap(p)+time.Minute) + 10*time.Minute
		deps.lifetime = max(deps.lifetime, d)
	}
	if opt.hold != "" {
		deps.lifetime = opt.holdFor + 10*time.Minute
	}

	var toolList []Tool
	for _, name := range opt.tools {
		t, err := lookupTool(name, opt.ferryBin)
		if err != nil {
			return err
		}
		toolList = append(toolList, t)
	}
	if opt.baseline != "" {
		base, err := filepath.Abs(opt.baseline)
		if err != nil {
			return err
		}
		toolList = append(toolList, baselineTools(toolSpecs, toolList, base)...)
	}

	if opt.workDir == "" {
		opt.workDir = filepath.Join(tmp, "work")
	}
	if err := os.MkdirAll(opt.workDir, 0o755); err != nil {
		return err
	}

	// A profile none of the chosen tools runs is left out.
	opt.profiles = slices.DeleteFunc(opt.profiles, func(p Profile) bool { return len(p.tools(toolList)) == 0 })
	files := map[int64]testFile{}
	for _, p := range opt.profiles {
		size := opt.size(p)
		if _, ok := files[size]; ok {
			continue
		}
		if files[size], err = ensureTestFile(opt.cacheDir, size); err != nil {
			return err
		}
	}

	if opt.hold != "" {
		return hold(ctx, opt.profiles[0], opt.origins[0], files[opt.size(opt.profiles[0])], deps, opt.holdFor)
	}

	rep := &Report{
		Command: commandLine(),
		Started: time.Now().UTC(),
		Runs:    opt.runs,
		Quick:   opt.quick,
	}
	for _, t := range toolList {
		rep.Tools = append(rep.Tools, KV{t.Name, t.Command()})
	}
	for _, p := range opt.profiles {
		for _, origin := range opt.origins {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			pr, err := runProfile(ctx, p, origin, toolList, files[opt.size(p)], *opt, deps)
			if err != nil {
				return fmt.Errorf("profile %s (%s): %w", p.Name, origin, err)
			}
			rep.Profiles = append(rep.Profiles, pr)
		}
	}
	rep.Finished = time.Now().UTC()
	rep.Machine = machineInfo(ctx, toolList)

	fmt.Println()
	fmt.Print(rep.Text())
	if opt.chart != "" {
		path := inRoot(opt.root, opt.chart)
		if err := writeFile(path, []byte(rep.Chart())); err != nil {
			return err
		}
		logf("wrote %s", path)
		if opt.out != "" {
			rel, err := filepath.Rel(filepath.Dir(opt.out), path)
			if err == nil {
				rep.ChartLink = filepath.ToSlash(rel)
			}
		}
	}
	if opt.out != "" {
		path := opt.out
		md := rep.Markdown()
		// The other subcommands' sections are theirs to write.
		if old, err := os.ReadFile(path); err == nil {
			md = keepSections(md, string(old))
		}
		if err := writeFile(path, []byte(md)); err != nil {
			return err
		}
		logf("wrote %s", path)
	}
	if n := rep.Failures(); n > 0 {
		return fmt.Errorf("%d run(s) failed", n)
	}
	return nil
}

// hold brings profile p up and waits until ctx ends or d has passed, for
// trying tools by hand on the emulated network.
func hold(ctx context.Context, p Profile, origin string, file testFile, deps startDeps, d time.Duration) error {
	env, err := p.start(ctx, origin, file.dir, deps)
	if err != nil {
		return err
	}
	defer env.Close()
	url := env.BaseURL + "/" + file.name
	fmt.Printf("profile %s is up (origin %s, TCP CC %s)\n", p.Name, env.Origin, env.CC)
	if env.Net != nil {
		fmt.Printf("link: %s; measured handshake %v\n", env.Net.Config.Describe(), env.Net.RTT.Round(10*time.Microsecond))
		fmt.Printf("namespaces: server %s, router %s, client %s\n", env.Net.Server, env.Net.Router, env.Net.Client)
	}
	fmt.Printf("file: %s (%s, sha256 %s)\n", url, formatSize(file.size), file.sum)
	fmt.Printf("try:  %s\n", strings.Join(env.Wrap([]string{"curl", "-o", "/dev/null", url}), " "))
	fmt.Printf("Ctrl-C tears it down (at most %v from now)\n", d)
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	if env.Net != nil {
		if st, err := env.Net.Stats(); err == nil {
			fmt.Printf("link carried: down %d packets (%d lost), up %d packets (%d lost); late writes mean %.0f µs\n",
				st.Down.Packets, st.Down.Lost, st.Up.Packets, st.Up.Lost, st.LateMeanMicros)
		}
	}
	return nil
}

func inRoot(root, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(root, path)
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
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

// parsePerProfile reads "profile=value,..." lists.
func parsePerProfile[T any](s string, parse func(string) (T, error)) (map[string]T, error) {
	m := map[string]T{}
	for _, item := range splitList(s) {
		name, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want profile=value", item)
		}
		if _, ok := lookupProfile(name); !ok {
			return nil, fmt.Errorf("unknown profile %q", name)
		}
		x, err := parse(v)
		if err != nil {
			return nil, err
		}
		m[name] = x
	}
	return m, nil
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
