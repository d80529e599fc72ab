package main

// The hls measurement: downloading a 300-segment HLS VOD over the wan50
// link with ferry hls, yt-dlp's native HLS downloader and ffmpeg, the
// tools people reach for to save a stream.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
	"github.com/ferryhq/ferry/internal/peer/wan"
)

const (
	hlsSectionStart = "<!-- hls -->"
	hlsSectionEnd   = "<!-- /hls -->"

	// hlsProfileName is the network the downloads cross: segments are
	// small, so round trips, not bandwidth, decide how long they take.
	hlsProfileName = "wan50"
	// hlsSeconds makes peer.HLSLong 300 segments of 2 s.
	hlsSeconds    = 600
	hlsDefaultCap = 4 * time.Minute
	// hlsDurationSlack is how far the duration of ffmpeg's remuxed file
	// may be from the stream's.
	hlsDurationSlack = 0.5
	// hlsMakeTimeout bounds encoding the stream when it is not cached.
	hlsMakeTimeout = 30 * time.Minute
	// hlsCheckTimeout bounds verifying one result.
	hlsCheckTimeout = 2 * time.Minute
	// hlsOutput is the file yt-dlp and ffmpeg write in their directory.
	hlsOutput = "out.ts"
)

type hlsOptions struct {
	common
	runs    int
	timeCap time.Duration
}

// hlsFlags is the hls mode.
func hlsFlags(fs *flag.FlagSet, c *common) func(context.Context) error {
	o := &hlsOptions{}
	fs.IntVar(&o.runs, "runs", 3, "downloads per tool")
	fs.DurationVar(&o.timeCap, "timecap", hlsDefaultCap, "time cap of one download")
	return func(ctx context.Context) error {
		o.common = *c
		return runHLSBench(ctx, *o)
	}
}

// hlsSource is the stream every tool downloads, as the origin serves it.
type hlsSource struct {
	*peer.HLSStream
	// Root is the directory the origin serves; Playlist is relative to it.
	Root string
	// Segments' files in playlist order, and their sizes.
	Files []string
	Sizes []int64
	// Bytes is the size of every .ts file of the stream's directory.
	Bytes int64
	// Sum is the hex sha-256 of the segments joined in playlist order.
	Sum string
}

// loadHLSSource reads the stream's playlist and segments, checks that they
// agree, and hashes them (which also brings them into the page cache, so
// the first run reads from memory like the others).
func loadHLSSource(s *peer.HLSStream, root string) (*hlsSource, error) {
	src := &hlsSource{HLSStream: s, Root: root}
	pl := filepath.Join(root, filepath.FromSlash(s.Playlist))
	b, err := os.ReadFile(pl)
	if err != nil {
		return nil, err
	}
	for _, uri := range playlistURIs(string(b)) {
		f := filepath.Join(filepath.Dir(pl), filepath.FromSlash(uri))
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		src.Files = append(src.Files, f)
		src.Sizes = append(src.Sizes, fi.Size())
	}
	if len(src.Files) != s.Segments {
		return nil, fmt.Errorf("%s names %d segments, want %d", pl, len(src.Files), s.Segments)
	}
	ts, err := filepath.Glob(filepath.Join(s.Dir, "*.ts"))
	if err != nil {
		return nil, err
	}
	for _, f := range ts {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		src.Bytes += fi.Size()
	}
	var n int64
	if src.Sum, n, err = joinedSHA256(src.Files); err != nil {
		return nil, err
	}
	if n != src.Bytes {
		return nil, fmt.Errorf("%s: its segments hold %d bytes, its .ts files %d", s.Dir, n, src.Bytes)
	}
	return src, nil
}

// playlistURIs returns the URI lines of a media playlist in order.
func playlistURIs(playlist string) []string {
	var out []string
	for line := range strings.Lines(playlist) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// joinedSHA256 returns the sha-256 of the files joined in order, and
// their total size.
func joinedSHA256(files []string) (string, int64, error) {
	h := sha256.New()
	var total int64
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return "", 0, err
		}
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", 0, err
		}
		total += n
	}
	return hex.EncodeToString(h.Sum(nil)), total, nil
}

// ytdlpFragments reads the number of fragments yt-dlp's native HLS
// downloader announced ("[hlsnative] Total fragments: 300").
func ytdlpFragments(output string) (int, bool) {
	for line := range strings.Lines(output) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "[hlsnative] Total fragments:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			return n, err == nil
		}
	}
	return 0, false
}

// hlsTool is a downloader of HLS streams being measured.
type hlsTool struct {
	Name string
	// argv is the command that downloads the stream at url into dir.
	argv func(url, dir string) []string
	// verify checks a completed run's result in dir and returns the bytes
	// of media it stored and what it found.
	verify func(ctx context.Context, src *hlsSource, dir string, c clientRun) (stored int64, check string, err error)
}

// Command is the tool's command line as the report shows it.
func (t hlsTool) Command() string {
	argv := t.argv("URL", "DIR")
	argv[0] = filepath.Base(argv[0])
	for i, a := range argv {
		argv[i] = shellQuote(a)
	}
	return strings.Join(argv, " ")
}

// Figures compare the default ferry with the others.
const (
	hlsFerry  = "ferry"
	hlsYTDLP  = "yt-dlp-N8"
	hlsFFmpeg = "ffmpeg"
)

// hlsGoals are the speed-ups the project aims at, in median wall time.
var hlsGoals = []Tracked{
	{Profile: hlsProfileName, Num: hlsFerry, Den: hlsYTDLP, Target: 1.5},
	{Profile: hlsProfileName, Num: hlsFerry, Den: hlsFFmpeg, Target: 5},
	{Profile: hlsProfileName, Num: "ferry-x16", Den: hlsYTDLP},
	{Profile: hlsProfileName, Num: "ferry-x16", Den: hlsFFmpeg},
}

func hlsTools(ferryBin, ytdlp, ffmpeg, ffprobe string) []hlsTool {
	ferryArgs := func(extra ...string) func(url, dir string) []string {
		return func(url, dir string) []string {
			return append([]string{ferryBin, "hls", url, "-o", dir, "-q"}, extra...)
		}
	}
	return []hlsTool{
		{Name: hlsFerry, argv: ferryArgs(), verify: verifyFerryHLS},
		{Name: "ferry-x16", argv: ferryArgs("-x", "16"), verify: verifyFerryHLS},
		{
			Name: hlsYTDLP,
			// The generic extractor hands the playlist to the native HLS
			// downloader (--downloader m3u8:native; --hls-prefer-native
			// still works but is deprecated). --fixup never keeps the
			// joined TS as it is: by default yt-dlp remuxes it into MP4
			// with ffmpeg after the download, which is not downloading.
			// It skips fragments it cannot fetch unless told to abort.
			argv: func(url, dir string) []string {
				return []string{ytdlp, "--ignore-config", "--no-cache-dir", "-N", "8",
					"--downloader", "m3u8:native", "--fixup", "never", "--abort-on-unavailable-fragments",
					"--no-part", "--no-progress", "-o", filepath.Join(dir, hlsOutput), url}
			},
			verify: verifyYTDLP,
		},
		{
			Name: hlsFFmpeg,
			argv: func(url, dir string) []string {
				return []string{ffmpeg, "-nostdin", "-v", "error", "-y", "-i", url, "-c", "copy", filepath.Join(dir, hlsOutput)}
			},
			verify: func(ctx context.Context, src *hlsSource, dir string, _ clientRun) (int64, string, error) {
				return verifyFFmpeg(ctx, ffprobe, src, dir)
			},
		},
	}
}

// verifyFerryHLS checks that ferry's local playlist names every segment,
// each stored whole, joined identical to the source's.
func verifyFerryHLS(_ context.Context, src *hlsSource, dir string, _ clientRun) (int64, string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.m3u8"))
	if err != nil {
		return 0, "", err
	}
	uris := playlistURIs(string(b))
	if len(uris) != len(src.Sizes) {
		return 0, "", fmt.Errorf("local playlist names %d segments, want %d", len(uris), len(src.Sizes))
	}
	files := make([]string, len(uris))
	var stored int64
	for i, uri := range uris {
		files[i] = filepath.Join(dir, filepath.FromSlash(uri))
		fi, err := os.Stat(files[i])
		if err != nil {
			return 0, "", fmt.Errorf("segment %d: %w", i, err)
		}
		if fi.Size() != src.Sizes[i] {
			return 0, "", fmt.Errorf("segment %d (%s) has %d bytes, want %d", i, uri, fi.Size(), src.Sizes[i])
		}
		stored += fi.Size()
	}
	sum, _, err := joinedSHA256(files)
	if err != nil {
		return 0, "", err
	}
	if sum != src.Sum {
		return 0, "", fmt.Errorf("segments joined: sha256 %s, want %s", sum, src.Sum)
	}
	return stored, fmt.Sprintf("%d segments, identical to the source's", len(uris)), nil
}

// verifyYTDLP checks that yt-dlp fetched every fragment and joined them
// into a file identical to the source's segments joined.
func verifyYTDLP(_ context.Context, src *hlsSource, dir string, c clientRun) (int64, string, error) {
	n, ok := ytdlpFragments(c.Stdout + "\n" + c.Stderr)
	if !ok {
		return 0, "", errors.New(`no "[hlsnative] Total fragments" line: not its native HLS downloader?`)
	}
	if n != len(src.Sizes) {
		return 0, "", fmt.Errorf("%d fragments, want %d", n, len(src.Sizes))
	}
	out := filepath.Join(dir, hlsOutput)
	fi, err := os.Stat(out)
	if err != nil {
		return 0, "", err
	}
	if fi.Size() != src.Bytes {
		return 0, "", fmt.Errorf("%s has %d bytes, the segments %d", hlsOutput, fi.Size(), src.Bytes)
	}
	sum, _, err := joinedSHA256([]string{out})
	if err != nil {
		return 0, "", err
	}
	if sum != src.Sum {
		return 0, "", fmt.Errorf("sha256 %s, the segments joined %s", sum, src.Sum)
	}
	return fi.Size(), fmt.Sprintf("%d fragments joined, identical to the segments joined", n), nil
}

// verifyFFmpeg checks the duration of ffmpeg's file: remuxing rewrites
// the TS packets, so its size and bytes differ from the source's.
func verifyFFmpeg(ctx context.Context, ffprobe string, src *hlsSource, dir string) (int64, string, error) {
	out := filepath.Join(dir, hlsOutput)
	fi, err := os.Stat(out)
	if err != nil {
		return 0, "", err
	}
	d, err := peer.ProbeDuration(ctx, ffprobe, out)
	if err != nil {
		return 0, "", err
	}
	if math.Abs(d-src.Duration) > hlsDurationSlack {
		return 0, "", fmt.Errorf("%s lasts %.3f s, the stream %.3f s", hlsOutput, d, src.Duration)
	}
	return fi.Size(), fmt.Sprintf("lasts %.3f s", d), nil
}

// hlsRun is one timed download of the stream.
type hlsRun struct {
	Run
	// Stored is the bytes of media the run left in its directory.
	Stored int64
	// Check says what verifying the result found.
	Check string
}

// measureHLS runs tool t once into a fresh dir and verifies its result, or
// counts what it stored when it reached timeCap.
func measureHLS(ctx context.Context, env *Env, t hlsTool, src *hlsSource, url, dir string, timeCap time.Duration) hlsRun {
	r := hlsRun{Run: Run{Tool: t.Name, ExitCode: -1}}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Err = err.Error()
		return r
	}
	defer os.RemoveAll(dir)

	c := runClient(ctx, env, t.argv(url, dir), dir, timeCap)
	r.Wall, r.CPU, r.MaxRSS, r.ExitCode, r.Link = c.Wall, c.CPU, c.MaxRSS, c.ExitCode, c.Link
	if c.Capped {
		r.Capped = true
		r.Stored = treeDataBytes(dir)
		r.Bytes = r.Stored
		return r
	}
	if r.Err = c.Err; r.Err != "" {
		return r
	}
	vctx, cancel := context.WithTimeout(ctx, hlsCheckTimeout)
	defer cancel()
	stored, check, err := t.verify(vctx, src, dir, c)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	// Throughput counts the stream's bytes, the same for every tool:
	// ffmpeg's remuxed file differs in size from what it fetched.
	r.Stored, r.Check, r.Bytes = stored, check, src.Bytes
	return r
}

// treeDataBytes counts the data bytes of the regular files under dir (see
// dataBytes): what a run stopped midway had stored.
func treeDataBytes(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			total += dataBytes(path)
		}
		return nil
	})
	return total
}

// hlsReport is one hls run.
type hlsReport struct {
	Command           string
	Started, Finished time.Time
	Runs              int
	TimeCap           time.Duration
	// The network and the origin.
	Profile, Describe, Link, CC, Origin string
	RTT                                 time.Duration
	LinkRate                            int64 // bit/s
	LoadBefore, LoadAfter               string
	// The stream.
	Title     string
	Playlist  string
	Segments  int
	Bytes     int64
	Duration  float64
	Encoding  string
	Versions  []KV
	Machine   string
	Tools     []KV // name, command line
	Results   []hlsRun
	LinkTotal *wan.Stats
}

// hlsStats summarises one tool's runs.
type hlsStats struct {
	Tool                      string
	Completed, Capped, Failed int
	// Over completed and capped runs; a capped run counts with its time
	// at the cap, so a median with capped runs in it is a lower bound.
	Wall, MinWall, MaxWall time.Duration
	MiBps                  float64
	Stored                 int64
	RSS, MaxRSS            int64
	CPU                    time.Duration
}

func (s hlsStats) Counted() int { return s.Completed + s.Capped }

func (s hlsStats) runsText() string {
	return toolStats{Completed: s.Completed, Capped: s.Capped, Failed: s.Failed}.runsText()
}

// atLeast marks figures that capped runs make lower bounds.
func (s hlsStats) atLeast() string {
	if s.Capped > 0 {
		return "≥ "
	}
	return ""
}

func (r *hlsReport) toolNames() []string {
	var names []string
	for _, kv := range r.Tools {
		names = append(names, kv.Key)
	}
	return names
}

func (r *hlsReport) stats() []hlsStats {
	var out []hlsStats
	for _, tool := range r.toolNames() {
		var tl runTally
		var stored []int64
		for i := range r.Results {
			if x := &r.Results[i]; x.Tool == tool && tl.add(&x.Run) {
				stored = append(stored, x.Stored)
			}
		}
		st := hlsStats{Tool: tool, Completed: tl.completed, Capped: tl.capped, Failed: tl.failed}
		if st.Counted() > 0 {
			st.Wall, st.MinWall, st.MaxWall = median(tl.walls), slices.Min(tl.walls), slices.Max(tl.walls)
			st.MiBps = median(tl.speeds)
			st.Stored = median(stored)
			st.RSS, st.MaxRSS = median(tl.rss), slices.Max(tl.rss)
			st.CPU = median(tl.cpus)
		}
		out = append(out, st)
	}
	return out
}

// hlsFigure is a goal with its measured value.
type hlsFigure struct {
	Tracked
	// LowerBound says the value is at least what it shows: the slower
	// tool's median has capped runs in it.
	LowerBound bool
}

func (f hlsFigure) value() string {
	if !f.OK {
		return "–"
	}
	v := f.Format(f.Value)
	if f.Target > 0 && v == f.Format(f.Target) && f.Value != f.Target {
		// Rounded to the target, it would read as meeting it whether it
		// does or not; cut, not rounded, it reads right.
		v = fmt.Sprintf("%.3fx", math.Floor(f.Value*1000)/1000)
	}
	if f.LowerBound {
		return "≥ " + v
	}
	return v
}

func (f hlsFigure) target() string {
	if f.Target > 0 {
		return "≥ " + f.Format(f.Target)
	}
	return "–"
}

// figures computes the goals: how many times faster the ferry variant is
// than the other tool, by median wall time. A ferry median with capped
// runs in it is not compared.
func (r *hlsReport) figures() []hlsFigure {
	stats := map[string]hlsStats{}
	for _, s := range r.stats() {
		stats[s.Tool] = s
	}
	var out []hlsFigure
	for _, g := range hlsGoals {
		f := hlsFigure{Tracked: g}
		num, okNum := stats[g.Num]
		den, okDen := stats[g.Den]
		if !okNum || !okDen {
			continue // a tool that was not measured
		}
		if num.Counted() > 0 && num.Capped == 0 && den.Counted() > 0 && num.Wall > 0 {
			f.Value, f.OK = den.Wall.Seconds()/num.Wall.Seconds(), true
			f.LowerBound = den.Capped > 0
		}
		out = append(out, f)
	}
	return out
}

// Failures counts the runs that failed or did not verify.
func (r *hlsReport) Failures() int {
	n := 0
	for _, x := range r.Results {
		if x.Err != "" {
			n++
		}
	}
	return n
}

// smoke says there are too few runs per tool for a median to mean much.
func (r *hlsReport) smoke() bool { return r.Runs < 3 }

func (r *hlsReport) streamText() string {
	return fmt.Sprintf("%d segments, %.0f s, %s", r.Segments, r.Duration, formatSize(r.Bytes))
}

// linkFloor is the least time the stream takes over the link: tbf counts
// 1514-byte frames for 1448 bytes of TCP payload. 0 without a rate.
func (r *hlsReport) linkFloor() time.Duration {
	if r.LinkRate <= 0 {
		return 0
	}
	payload := float64(r.LinkRate) / 8 * 1448 / 1514 // bytes/s
	return time.Duration(float64(r.Bytes) / payload * float64(time.Second))
}

// ceiling is the largest speed-up over tool den that the link allows: its
// median over linkFloor; "–" when unknown.
func (r *hlsReport) ceiling(den string) string {
	floor := r.linkFloor()
	for _, s := range r.stats() {
		if s.Tool == den && s.Counted() > 0 && floor > 0 {
			return fmt.Sprintf("%s%.2fx", s.atLeast(), s.Wall.Seconds()/floor.Seconds())
		}
	}
	return "–"
}

// Text is the summary printed on the terminal.
func (r *hlsReport) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HLS downloads, %d round(s), %s\n", r.Runs, r.Command)
	fmt.Fprintf(&b, "profile %s: %s; handshake %v; %s; origin %s\n", r.Profile, r.Link, r.RTT.Round(10*time.Microsecond), r.CC, r.Origin)
	fmt.Fprintf(&b, "stream %s: %s (%d bytes); cap %v per run; the link takes at least %.2f s for it\n",
		r.Playlist, r.streamText(), r.Bytes, r.TimeCap, r.linkFloor().Seconds())
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\truns\tmedian s\tmin s\tmax s\tmedian MiB/s\tstored MiB\tpeak RSS MiB\tcpu s\t")
	for _, s := range r.stats() {
		fmt.Fprintf(tw, "%s\t%s\t%s%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%.2f\t\n", s.Tool, s.runsText(), s.atLeast(), s.Wall.Seconds(),
			s.MinWall.Seconds(), s.MaxWall.Seconds(), s.MiBps, mib(s.Stored), mib(s.RSS), s.CPU.Seconds())
	}
	tw.Flush()
	for _, x := range r.Results {
		if x.Err != "" {
			fmt.Fprintf(&b, "FAILED %s round %d: %s\n", x.Tool, x.Round, x.Err)
		}
	}
	b.WriteString("\nspeed-up by median wall time (ceiling: the most the link allows):\n")
	for _, f := range r.figures() {
		target := ""
		if f.Target > 0 {
			target = "target " + f.target() + ": "
		}
		fmt.Fprintf(&b, "  %-24s %9s  ceiling %7s  %s%s\n", f.Name(), f.value(), r.ceiling(f.Den), target, f.Status())
	}
	if r.smoke() {
		fmt.Fprintf(&b, "(%d run(s) per tool: a smoke run, not a measurement)\n", r.Runs)
	}
	return b.String()
}

// Section is the HLS section of docs/BENCHMARKS.md, markers included: one
// part per stream measured.
func hlsSection(reps []*hlsReport) string {
	var b strings.Builder
	b.WriteString(hlsSectionStart + "\n")
	b.WriteString("## HLS downloads\n\n")
	b.WriteString("HLS VODs of 300 segments downloaded by `ferry hls`, yt-dlp's native HLS downloader and\n")
	b.WriteString("ffmpeg. Goals: ferry at least 1.5 times as fast as yt-dlp with 8 fragments at once, and 5 times\n")
	b.WriteString("as fast as ffmpeg, by median wall time. How much faster any tool can be than ffmpeg, which\n")
	b.WriteString("fetches one segment after another on one connection, depends on the segments' size: ffmpeg\n")
	b.WriteString("loses about a round trip per segment, and the link's rate bounds everyone. So two streams\n")
	b.WriteString("are measured: one at 1.5 Mbit/s (segments of ~400 KB) and its 0.27 Mbit/s rendition\n")
	b.WriteString("(~70 KB), each with the ceiling the link allows.\n")
	for _, r := range reps {
		fmt.Fprintf(&b, "\n### %s\n\n", r.Title)
		b.WriteString(r.body())
	}
	b.WriteString(hlsSectionEnd + "\n")
	return b.String()
}

// body is one stream's part of the section.
func (r *hlsReport) body() string {
	var b strings.Builder
	fmt.Fprintf(&b, "One HLS VOD, %s, downloaded over `%s`.\n\n", r.streamText(), r.Profile)
	if r.smoke() {
		fmt.Fprintf(&b, "**%d run(s) per tool: a smoke run, not a measurement.**\n\n", r.Runs)
	}
	b.WriteString("| tool | runs | median time (s) | min–max (s) | median MiB/s | media stored (MiB) | median peak RSS (MiB) | max peak RSS (MiB) | median CPU (s) |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range r.stats() {
		fmt.Fprintf(&b, "| %s | %s | %s%.2f | %.2f–%.2f | %.2f | %s | %s | %s | %.2f |\n", s.Tool, s.runsText(), s.atLeast(), s.Wall.Seconds(),
			s.MinWall.Seconds(), s.MaxWall.Seconds(), s.MiBps, mib(s.Stored), mib(s.RSS), mib(s.MaxRSS), s.CPU.Seconds())
	}
	b.WriteString("\n| figure | speed-up | target | | ceiling |\n| --- | ---: | ---: | --- | ---: |\n")
	for _, f := range r.figures() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", f.Name(), f.value(), f.target(), f.Status(), r.ceiling(f.Den))
	}
	if floor := r.linkFloor(); floor > 0 {
		fmt.Fprintf(&b, "\nThe link carries at most %.1f MiB/s of TCP payload (`tbf` counts 1514-byte frames for 1448\n",
			float64(r.Bytes)/(1<<20)/floor.Seconds())
		fmt.Fprintf(&b, "payload bytes), so no tool downloads the stream in less than %.2f s. *Ceiling* is the\n", floor.Seconds())
		b.WriteString("largest speed-up that allows: the other tool's median time over that floor.\n")
	}

	fmt.Fprintf(&b, "\nProduced by:\n\n```\n%s\n```\n\n", r.Command)
	fmt.Fprintf(&b, "on %s (%s in all), %d round(s) per tool; load average (1, 5, 15 min) before: %s; after: %s.\n\n",
		r.Started.Format("2006-01-02 15:04 UTC"), r.Finished.Sub(r.Started).Round(time.Second), r.Runs, r.LoadBefore, r.LoadAfter)
	if lt := r.LinkTotal; lt != nil {
		fmt.Fprintf(&b, "Over the whole run the link carried %d packets down (%.2f%% dropped) and %d up (%.2f%%).\n\n",
			lt.Down.Packets, 100*lt.Down.LossRate(), lt.Up.Packets, 100*lt.Up.LossRate())
	}

	b.WriteString("| | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| profile | `%s`: %s; %s; the TCP handshake from client to server measured %v; TCP congestion control %s |\n",
		r.Profile, mdEscape(r.Describe), mdEscape(r.Link), r.RTT.Round(10*time.Microsecond), mdEscape(r.CC))
	fmt.Fprintf(&b, "| origin | %s |\n", mdEscape(r.Origin))
	fmt.Fprintf(&b, "| stream | `%s`: %s (%d bytes); %s |\n", r.Playlist, r.streamText(), r.Bytes, mdEscape(r.Encoding))
	fmt.Fprintf(&b, "| time cap | %v per run |\n", r.TimeCap)
	for _, kv := range r.Versions {
		fmt.Fprintf(&b, "| %s | %s |\n", kv.Key, mdEscape(kv.Value))
	}
	fmt.Fprintf(&b, "| machine | %s |\n", mdEscape(r.Machine))

	b.WriteString("\n| tool | command |\n| --- | --- |\n")
	for _, kv := range r.Tools {
		fmt.Fprintf(&b, "| %s | `%s` |\n", kv.Key, mdEscape(kv.Value))
	}

	b.WriteString("\nMethod: nginx serves the stream in the server's namespace; each tool runs in the client's,\n")
	b.WriteString("interleaved, the first one rotating each round, every run after `sync` into a fresh, empty\n")
	b.WriteString("directory, timed from the start of its process to its exit. Then, untimed: ferry's local\n")
	b.WriteString("playlist must name every segment, each the size of the source's, joined identical to the\n")
	b.WriteString("source's segments joined; yt-dlp must announce every fragment and its file must be identical\n")
	fmt.Fprintf(&b, "to the source's segments joined; ffmpeg's remuxed file must last within %.1f s of the stream\n", hlsDurationSlack)
	b.WriteString("(ffprobe), as remuxing changes its size. Throughput is the stream's size over wall time, in\n")
	b.WriteString("MiB/s (2^20 bytes); *media stored* is what the run left on disk (ferry: the segments, yt-dlp and\n")
	b.WriteString("ffmpeg: their one file). Peak RSS is the client's `ru_maxrss` (largest of it and its children),\n")
	b.WriteString("CPU its user + system time. A run that reaches the cap is killed and marked *capped*: its time\n")
	b.WriteString("counts at the cap, so medians and speed-ups with capped runs in them are lower bounds (≥).\n")
	b.WriteString("yt-dlp's time includes starting Python and loading its extractors; `--fixup never` keeps it\n")
	b.WriteString("from remuxing the joined TS into MP4 afterwards, which it does by default.\n")

	b.WriteString("\n<details><summary>Every run</summary>\n\n")
	b.WriteString("| round | tool | time (s) | MiB/s | result | stored (MiB) | peak RSS (MiB) | CPU (s) | packets down (lost) |\n")
	b.WriteString("| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n")
	for _, x := range r.Results {
		res := x.Check
		switch {
		case x.Err != "":
			res = "FAILED: " + x.Err
		case x.Capped:
			res = fmt.Sprintf("capped, %s stored", formatSize(x.Stored))
		}
		link := "–"
		if x.Link != nil {
			link = fmt.Sprintf("%d (%d)", x.Link.Down.Packets, x.Link.Down.Lost)
		}
		fmt.Fprintf(&b, "| %d | %s | %.2f | %.2f | %s | %s | %s | %.2f | %s |\n", x.Round, x.Tool, x.Wall.Seconds(), x.MiBps(),
			mdEscape(res), mib(x.Stored), mib(x.MaxRSS), x.CPU.Seconds(), link)
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

// runHLSBench is go run ./bench hls: it measures every tool o.runs times,
// prints the table and, unless o.out is "", writes the section into the
// markdown report at o.out.
func runHLSBench(ctx context.Context, o hlsOptions) error {
	if o.runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	if o.timeCap <= 0 {
		return errors.New("-timecap must be positive")
	}
	p, ok := lookupProfile(hlsProfileName)
	if !ok {
		return fmt.Errorf("no profile %s", hlsProfileName)
	}
	bins := map[string]string{}
	for _, name := range []string{"ffmpeg", "ffprobe", "yt-dlp", "nginx"} {
		path, err := peer.FindBinary(name)
		if err != nil {
			return err
		}
		bins[name] = path
	}

	tmp, err := o.scratch(ctx, "hls")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tools := hlsTools(o.ferryBin, bins["yt-dlp"], bins["ffmpeg"], bins["ffprobe"])
	deps := startDeps{
		ferryBin: o.ferryBin,
		// Every run at its cap, plus slack: the link outlives no run.
		lifetime: time.Duration(o.runs*len(tools))*(o.timeCap+time.Minute) + 10*time.Minute,
	}
	if deps.forwarder, err = wanForwarder(ctx, tmp); err != nil {
		return err
	}

	if o.workDir == "" {
		o.workDir = filepath.Join(tmp, "work")
	}
	var reps []*hlsReport
	for _, st := range hlsStreams {
		rep, err := measureHLSStream(ctx, st, p, tools, o, deps, bins)
		if err != nil {
			return err
		}
		reps = append(reps, rep)
		fmt.Println()
		fmt.Print(rep.Text())
	}
	if err := writeSection(o.out, hlsDocSection, hlsSection(reps), putDocSection, streamDocSection); err != nil {
		return err
	}
	failures := 0
	for _, rep := range reps {
		failures += rep.Failures()
	}
	if failures > 0 {
		return fmt.Errorf("%d run(s) failed", failures)
	}
	return nil
}

// hlsStream is a stream the benchmark measures.
type hlsStream struct {
	kind     peer.HLSKind
	title    string
	encoding string
}

var hlsStreams = []hlsStream{
	{peer.HLSLong, "1.5 Mbit/s: segments of about 400 KB",
		"2 s MPEG-TS segments of 640x360 testsrc2 at 25 fps in x264 (ultrafast, 1.5 Mbit/s) with a 64 kbit/s AAC sine, made by ffmpeg (internal/peer/hlsgen.go)"},
	{peer.HLSLongLow, "0.27 Mbit/s: segments of about 70 KB",
		"2 s MPEG-TS segments of 320x180 testsrc2 at 25 fps in x264 (ultrafast, 0.2 Mbit/s) with a 64 kbit/s AAC sine, made by ffmpeg (internal/peer/hlsgen.go)"},
}

// measureHLSStream makes (or reuses) one stream and measures every tool on it.
func measureHLSStream(ctx context.Context, st hlsStream, p Profile, tools []hlsTool, o hlsOptions, deps startDeps, bins map[string]string) (*hlsReport, error) {
	logf("preparing the HLS stream %s in %s", st.kind, filepath.Join(o.cacheDir, "hls"))
	mctx, cancel := context.WithTimeout(ctx, hlsMakeTimeout)
	s, made, err := peer.EnsureHLS(mctx, bins["ffmpeg"], o.cacheDir, st.kind, hlsSeconds)
	cancel()
	if err != nil {
		return nil, err
	}
	src, err := loadHLSSource(s, o.cacheDir)
	if err != nil {
		return nil, err
	}
	verb := "reusing"
	if made {
		verb = fmt.Sprintf("made in %v", s.Elapsed.Round(time.Second))
	}
	logf("%s %s: %d segments, %.3f s, %s", verb, s.Playlist, s.Segments, s.Duration, formatSize(src.Bytes))
	rep := &hlsReport{
		Command: commandLine(), Started: time.Now().UTC(), Runs: o.runs, TimeCap: o.timeCap,
		Profile: p.Name, Describe: p.Describe, LinkRate: p.LinkRate(), Title: st.title,
		Playlist: s.Playlist, Segments: s.Segments, Bytes: src.Bytes, Duration: s.Duration, Encoding: st.encoding,
	}
	for _, t := range tools {
		rep.Tools = append(rep.Tools, KV{t.Name, t.Command()})
	}
	if err := measureHLSTools(ctx, p, tools, src, o, deps, rep); err != nil {
		return nil, err
	}
	rep.Finished = time.Now().UTC()
	rep.Versions, rep.Machine = hlsVersions(ctx, bins)
	return rep, nil
}

// measureHLSTools brings profile p up with nginx serving the stream and runs
// every tool o.runs times, interleaved, into rep.
func measureHLSTools(ctx context.Context, p Profile, tools []hlsTool, src *hlsSource, o hlsOptions, deps startDeps, rep *hlsReport) error {
	logf("profile %s: starting (cap %v per run)", p.Name, o.timeCap)
	rep.LoadBefore = loadAvg()
	defer func() { rep.LoadAfter = loadAvg() }()
	env, err := p.start(ctx, "nginx", src.Root, deps)
	if err != nil {
		return err
	}
	defer func() {
		if err := env.Close(); err != nil {
			logf("profile %s: teardown: %v", p.Name, err)
		}
	}()
	rep.Origin, rep.CC = env.Origin, env.CC
	if env.Net != nil {
		rep.Link, rep.RTT = env.Net.Config.Describe(), env.Net.RTT
	}
	url := env.BaseURL + "/" + src.Playlist
	for round := 1; round <= o.runs; round++ {
		// Rotate who goes first, as the main harness does.
		for i := range tools {
			t := tools[(i+round-1)%len(tools)]
			if ctx.Err() != nil {
				return ctx.Err()
			}
			dir := filepath.Join(o.workDir, "hls", fmt.Sprintf("%d-%s", round, t.Name))
			r := measureHLS(ctx, env, t, src, url, dir, o.timeCap)
			r.Round = round
			rep.Results = append(rep.Results, r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logHLSRun(o.runs, r)
		}
	}
	if env.Net != nil {
		if st, err := env.Net.Stats(); err == nil {
			rep.LinkTotal = &st
		}
	}
	return nil
}

func logHLSRun(rounds int, r hlsRun) {
	head := fmt.Sprintf("hls %-9s round %d/%d:", r.Tool, r.Round, rounds)
	if r.Err != "" {
		logf("%s FAILED after %.2f s: %s", head, r.Wall.Seconds(), r.Err)
		return
	}
	result := r.Check
	if r.Capped {
		result = fmt.Sprintf("CAPPED with %s stored", formatSize(r.Stored))
	}
	extra := ""
	if r.Link != nil {
		extra = fmt.Sprintf("  link down %d pkts (%d lost)", r.Link.Down.Packets, r.Link.Down.Lost)
	}
	logf("%s %7.2f s %7.2f MiB/s  peak RSS %6.1f MiB  cpu %5.2f s  %s%s", head, r.Wall.Seconds(), r.MiBps(),
		float64(r.MaxRSS)/(1<<20), r.CPU.Seconds(), result, extra)
}

// hlsVersions are the versions the section names, and a one-line summary of
// the machine.
func hlsVersions(ctx context.Context, bins map[string]string) ([]KV, string) {
	var versions []KV
	var machine []string
	for _, kv := range machineInfo(ctx, nil) {
		switch kv.Key {
		case "ferry commit":
			versions = append(versions, kv)
		case "nproc", "CPU", "memory", "kernel", "Go":
			machine = append(machine, kv.Key+" "+kv.Value)
		}
	}
	version := func(name string, args ...string) string {
		if v := firstLine(ctx, bins[name], args...); v != "" {
			return v
		}
		return "unknown"
	}
	versions = append(versions, KV{"yt-dlp", version("yt-dlp", "--version")}, KV{"ffmpeg", version("ffmpeg", "-version")})
	return versions, strings.Join(machine, ", ")
}
