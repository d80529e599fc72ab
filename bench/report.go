package main

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferryhq/ferry/internal/peer/wan"
)

// Report is one benchmark run: every profile's runs and the machine.
type Report struct {
	Command  string
	Started  time.Time
	Finished time.Time
	Runs     int
	Quick    bool
	Machine  []KV
	Tools    []KV // name, command line
	Profiles []ProfileResult
	// ChartLink is the chart's path relative to the markdown report.
	ChartLink string
}

// KV is one line of machine information.
type KV struct{ Key, Value string }

// toolStats summarises one tool's runs in one profile.
type toolStats struct {
	Tool      string
	Completed int // finished and verified
	Capped    int // stopped at the time cap
	Failed    int
	// Throughput figures are over completed and capped runs.
	MiBps    float64 // median
	MinMiBps float64
	MaxMiBps float64
	Util     float64       // median goodput / link rate; 0 without a link
	Wall     time.Duration // median
	RSS      int64         // median peak RSS, bytes
	MaxRSS   int64         // largest peak RSS, bytes
	CPU      time.Duration // median
	// WireRatio is the bytes the link carried down (IP packets, with
	// retransmissions) over the bytes fetched; 0 without a link.
	WireRatio float64
	// LossPct is the share of downward packets the link dropped.
	LossPct float64
	// Metrics summarises the tool's own accounts (ferry's -w).
	Metrics string
}

// Counted is the number of runs whose throughput counts.
func (s toolStats) Counted() int { return s.Completed + s.Capped }

func median[T int64 | float64 | time.Duration](v []T) T {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// runTally is what one tool's runs add up to: how many ended how, and
// the figures of those that count (completed or capped).
type runTally struct {
	completed, capped, failed int
	walls, cpus               []time.Duration
	speeds                    []float64
	rss                       []int64
}

// add counts r and reports whether its figures count.
func (t *runTally) add(r *Run) bool {
	switch {
	case r.Err != "":
		t.failed++
		return false
	case r.Capped:
		t.capped++
	default:
		t.completed++
	}
	t.walls = append(t.walls, r.Wall)
	t.cpus = append(t.cpus, r.CPU)
	t.speeds = append(t.speeds, r.MiBps())
	t.rss = append(t.rss, r.MaxRSS)
	return true
}

func (pr ProfileResult) stats() []toolStats {
	var out []toolStats
	for _, tool := range pr.Tools {
		var tl runTally
		var wire, fetched, pkts, lost uint64
		metrics := map[string][]float64{}
		for i := range pr.Runs {
			r := &pr.Runs[i]
			if r.Tool != tool || !tl.add(r) {
				continue
			}
			if r.Link != nil {
				d := pr.data(*r.Link)
				wire += d.Bytes
				pkts += d.Packets
				lost += d.Lost
				fetched += uint64(r.Bytes)
			}
			for k, v := range parseMetrics(r.Metrics) {
				metrics[k] = append(metrics[k], v)
			}
		}
		st := toolStats{Tool: tool, Completed: tl.completed, Capped: tl.capped, Failed: tl.failed}
		if st.Counted() > 0 {
			st.Wall = median(tl.walls)
			st.CPU = median(tl.cpus)
			st.MiBps = median(tl.speeds)
			st.MinMiBps = slices.Min(tl.speeds)
			st.MaxMiBps = slices.Max(tl.speeds)
			st.RSS = median(tl.rss)
			st.MaxRSS = slices.Max(tl.rss)
			if pr.LinkRate > 0 {
				st.Util = st.MiBps * (1 << 20) * 8 / float64(pr.LinkRate)
			}
			if fetched > 0 {
				st.WireRatio = float64(wire) / float64(fetched)
			}
			if pkts > 0 {
				st.LossPct = 100 * float64(lost) / float64(pkts)
			}
		}
		var parts []string
		for _, k := range []string{"connections", "retries", "restarts"} {
			if v, ok := metrics[k]; ok {
				parts = append(parts, fmt.Sprintf("%s %s", k, formatMetric(median(v))))
			}
		}
		if len(parts) > 0 {
			st.Metrics = "median " + strings.Join(parts, ", ")
		}
		out = append(out, st)
	}
	return out
}

func formatMetric(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// parseMetrics reads "k=v k=v" lines.
func parseMetrics(s string) map[string]float64 {
	m := map[string]float64{}
	for f := range strings.FieldsSeq(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			m[k] = x
		}
	}
	return m
}

// Tracked is a figure the project follows from run to run, with its target.
type Tracked struct {
	Profile string
	// Origin is the server the figure is measured with; "" is nginx.
	Origin string
	Num    string // tool
	Den    string // tool; "" means link utilisation of Num
	// DenOrigin, when set, is the server Den is measured with, so that
	// one tool into two servers is compared.
	DenOrigin string
	// RSS makes the figure Num's largest peak RSS in MiB, with Target
	// as a ceiling.
	RSS    bool
	Target float64
	Value  float64
	OK     bool // Value was measured
}

// where is the figure's profile, and its server unless that is nginx.
func (t Tracked) where() string {
	if t.Origin == "" || t.DenOrigin != "" {
		return t.Profile
	}
	return t.Profile + " (" + t.Origin + ")"
}

func (t Tracked) whereMarkdown() string {
	if t.Origin == "" || t.DenOrigin != "" {
		return "`" + t.Profile + "`"
	}
	return "`" + t.Profile + "` (" + t.Origin + ")"
}

func (t Tracked) Name() string {
	if t.DenOrigin != "" {
		return fmt.Sprintf("%s into %s / into %s", t.Num, cmp.Or(t.Origin, "nginx"), t.DenOrigin)
	}
	if t.RSS {
		return fmt.Sprintf("%s max peak RSS", t.Num)
	}
	if t.Den == "" {
		return fmt.Sprintf("%s link utilisation", t.Num)
	}
	return fmt.Sprintf("%s / %s", t.Num, t.Den)
}

func (t Tracked) Format(v float64) string {
	if t.RSS {
		return fmt.Sprintf("%.1f MiB", v)
	}
	if t.Den == "" {
		return fmt.Sprintf("%.0f%%", v*100)
	}
	return fmt.Sprintf("%.2fx", v)
}

// Bound is the target with its direction, "≥ 5.00x" or "≤ 40.0 MiB".
func (t Tracked) Bound() string {
	if t.RSS {
		return "≤ " + t.Format(t.Target)
	}
	return "≥ " + t.Format(t.Target)
}

// Status says whether the value meets the target.
func (t Tracked) Status() string {
	switch {
	case !t.OK:
		return "not measured"
	case t.Target == 0:
		return "(no target)"
	case t.RSS && t.Value <= t.Target, !t.RSS && t.Value >= t.Target:
		return "met"
	default:
		return "MISSED"
	}
}

// trackedFigures are the ratios the project tracks, in median throughput
// with the nginx origin.
var trackedFigures = []Tracked{
	{Profile: "wan50-loss1", Num: "ferry-x8", Den: "curl", Target: 5},
	{Profile: "wan50-loss1", Num: "ferry-x8", Den: "aria2c-x8", Target: 1.1},
	{Profile: "wan50", Num: "ferry-x8", Target: 0.90},
	{Profile: "capped", Num: "ferry-x8", Den: "ferry-x1", Target: 7},
	{Profile: "loopback", Num: "ferry-x8", Den: "aria2c-x8", Target: 1.0},
	{Profile: "loopback", Num: "ferry", Den: "curl"},
	{Profile: "big", Num: "ferry-x8", RSS: true, Target: 40},
	{Profile: "big", Num: "ferry", RSS: true, Target: 40},
}

// Tracked computes the tracked figures.
func (r *Report) Tracked() []Tracked { return track(trackedFigures, r.Profiles) }

// track computes figures from the profiles' results.
func track(figures []Tracked, profiles []ProfileResult) []Tracked {
	// find is the stats of tool in profile with origin, if any run of it
	// counts.
	find := func(profile, origin, tool string) (*toolStats, *ProfileResult) {
		for i := range profiles {
			p := &profiles[i]
			if p.Name != profile || p.Origin != origin || p.Skipped != "" {
				continue
			}
			for _, s := range p.stats() {
				if s.Tool == tool && s.Counted() > 0 {
					return &s, p
				}
			}
		}
		return nil, nil
	}
	var out []Tracked
	for _, t := range figures {
		origin := cmp.Or(t.Origin, "nginx")
		num, p := find(t.Profile, origin, t.Num)
		switch {
		case num == nil:
		case t.RSS:
			// A run that failed (killed for memory, say) leaves the
			// figure unmeasured rather than met.
			if num.Failed == 0 {
				t.Value, t.OK = float64(num.MaxRSS)/(1<<20), true
			}
		case t.Den == "":
			if p.LinkRate > 0 {
				t.Value, t.OK = num.Util, true
			}
		default:
			if den, _ := find(t.Profile, cmp.Or(t.DenOrigin, origin), t.Den); den != nil && den.MiBps > 0 {
				t.Value, t.OK = num.MiBps/den.MiBps, true
			}
		}
		out = append(out, t)
	}
	return out
}

// Failures counts the runs that failed or did not verify.
func (r *Report) Failures() int {
	n := 0
	for _, p := range r.Profiles {
		for _, run := range p.Runs {
			if run.Err != "" {
				n++
			}
		}
	}
	return n
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// data is the direction of the link that carried the file: down for a
// download, up for an upload.
func (pr ProfileResult) data(st wan.Stats) wan.DirStats {
	if pr.Upload {
		return st.Up
	}
	return st.Down
}

func (pr ProfileResult) dataDir() string {
	if pr.Upload {
		return "up"
	}
	return "down"
}

// moved says what the tools did with the file.
func (pr ProfileResult) moved() string {
	if pr.Upload {
		return "sent"
	}
	return "fetched"
}

// serverRole names the server's part: the origin of downloads, the
// upload server of uploads.
func (pr ProfileResult) serverRole() string {
	if pr.Upload {
		return "server"
	}
	return "origin"
}

func (pr ProfileResult) title() string {
	return fmt.Sprintf("%s (%s)", pr.Name, pr.Origin)
}

func (s toolStats) runsText() string {
	t := fmt.Sprintf("%d", s.Completed)
	if s.Capped > 0 {
		t += fmt.Sprintf("+%d capped", s.Capped)
	}
	if s.Failed > 0 {
		t += fmt.Sprintf(" (%d failed)", s.Failed)
	}
	return t
}

func utilText(pr ProfileResult, s toolStats) string {
	if pr.LinkRate == 0 || s.Counted() == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", s.Util*100)
}

// Text is the summary printed on the terminal.
func (r *Report) Text() string {
	return summaryText(r.Runs, r.Command, r.Profiles, "tracked figures (median throughput or largest peak RSS, nginx origin)", r.Tracked())
}

// summaryText is a mode's summary for the terminal: every profile's
// table, then the tracked figures under the title what.
func summaryText(runs int, command string, profiles []ProfileResult, what string, tracked []Tracked) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d round(s), %s\n", runs, command)
	for _, p := range profiles {
		p.writeText(&b)
	}
	fmt.Fprintf(&b, "\n%s:\n", what)
	writeTrackedText(&b, tracked)
	return b.String()
}

// Markdown is docs/BENCHMARKS.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Whole-file downloads of one file of random bytes per profile, timed from the start of the\n")
	b.WriteString("client process to its exit, then verified by sha-256 (not timed). Tools run interleaved, the\n")
	b.WriteString("first one rotating each round; every run starts after `sync` in a fresh, empty directory.\n")
	b.WriteString("A run that reaches its profile's time cap is killed; it counts with the bytes it had written\n")
	b.WriteString("(data ranges of its output file, holes and unwritten preallocation excluded) over the time\n")
	b.WriteString("it ran, and is marked *capped* (not verified). Throughput is MiB/s (2^20 bytes) of wall\n")
	b.WriteString("time; \"median\" is over completed and capped runs. Peak RSS is the client's `ru_maxrss`,\n")
	b.WriteString("CPU its user + system time.\n\n")
	if r.ChartLink != "" {
		fmt.Fprintf(&b, "![Median throughput per tool and profile](%s)\n\n", r.ChartLink)
	}

	b.WriteString("## Tracked figures\n\n")
	b.WriteString("Median throughput (RSS: the largest peak of any run) with the nginx origin.\n\n")
	writeTrackedMarkdown(&b, r.Tracked())
	writeProvenance(&b, "##", r.Command, r.Started, r.Finished, fmt.Sprintf("%d round(s) per tool and profile", r.Runs), r.Machine, r.Tools)
	b.WriteString("\nferry's `-w` line only prints the connection and retry counts it keeps anyway (no digest\n")
	b.WriteString("is computed for it).\n")

	b.WriteString("\n## Profiles\n\n| profile | network | emulated link | measured TCP handshake | file | time cap |\n| --- | --- | --- | ---: | ---: | ---: |\n")
	seen := map[string]bool{}
	for _, p := range r.Profiles {
		if seen[p.Name] || p.Skipped != "" {
			continue
		}
		seen[p.Name] = true
		link, rtt := "–", "–"
		if p.Link != "" {
			link, rtt = p.Link, p.RTT.Round(10*time.Microsecond).String()
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %v |\n", p.Name, mdEscape(p.Describe), mdEscape(link), rtt, formatSize(p.Size), p.TimeCap)
	}

	for _, p := range r.Profiles {
		p.writeMarkdown(&b, "##")
	}
	b.WriteString("\n## How the WAN profiles work\n\n")
	b.WriteString("`internal/peer/wan` builds three network namespaces: a server (10.77.1.1), a router and a\n")
	b.WriteString("client (10.77.2.1), joined by veth pairs with TSO, GSO and GRO off, so that every\n")
	b.WriteString("impairment acts on real 1500-byte packets. In the router, policy routing sends every packet\n")
	b.WriteString("that arrives from either side to a TUN device, where `wanfwd` (a small Go program built by\n")
	b.WriteString("the harness) drops it at random with the profile's loss probability or holds it for half the\n")
	b.WriteString("round trip (a binary heap ordered by due time and a timerfd, one thread reading and one\n")
	b.WriteString("writing), then hands it back to the kernel, which routes it out through `tc tbf` at the\n")
	b.WriteString("profile's rate with a queue of one bandwidth-delay product. Both directions get the same\n")
	b.WriteString("delay, loss and rate. `tbf` counts Ethernet frames (1514 bytes for 1448 bytes of TCP payload),\n")
	b.WriteString("so a 100 Mbit/s link carries at most about 95.6 Mbit/s (11.4 MiB/s) of payload: link use, goodput\n")
	b.WriteString("over 100 Mbit/s, tops out near 96%. The machine's default congestion control may ignore random\n")
	b.WriteString("loss (BBR does);\n")
	b.WriteString("the server and client use the one shown per profile, set on their routes over the link.\n")
	b.WriteString("Nothing leaves the namespaces; they are removed after each profile, and leftovers of a\n")
	b.WriteString("crashed run are removed at the next start.\n")

	b.WriteString("\n## Notes\n\n")
	b.WriteString("- `capped` sets `sendfile_max_chunk 64k` beside `limit_rate 2m`. nginx applies the limit\n")
	b.WriteString("  per request, allowing one second's worth at the start and pausing after each chunk it\n")
	b.WriteString("  sends; with the default 2 MiB chunk, a response of up to 2 MiB leaves at full speed, so a\n")
	b.WriteString("  client whose range requests are that small is not limited at all and the profile would\n")
	b.WriteString("  measure request sizes rather than connections. With 64 KiB chunks each request's first\n")
	b.WriteString("  64 KiB still leaves at once: many short requests gain a little over 2 MiB/s per connection.\n")
	b.WriteString("- `ferry get` writes to `FILE.part`, fsyncs it and renames it into place; `curl -o` writes\n")
	b.WriteString("  the file and exits without fsync. On loopback the disk write is a large part of the time,\n")
	b.WriteString("  so the durability ferry promises is part of what is measured.\n")
	b.WriteString("- Loopback figures move by up to a quarter between runs of the same binaries on a small\n")
	b.WriteString("  machine (page cache, CPU frequency, the two tools' processes sharing two cores); compare\n")
	b.WriteString("  tools within one run, which is what the tracked ratios do.\n")
	b.WriteString("- Reproduce with the command above from the module root, as root for the WAN profiles; the\n")
	b.WriteString("  test files are kept in the cache directory (`-cache`) and reused. `go run ./bench -hold\n")
	b.WriteString("  wan50-loss1` brings one profile up and waits, for trying tools by hand.\n")
	b.WriteString("- `go run ./bench stream`, `put`, `hls` and `daemon` measure on their own and write\n")
	b.WriteString("  their sections below; a full run keeps them as they are.\n")
	return b.String()
}

func lateText(h [5]uint64) string {
	var total uint64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return "no packets"
	}
	pct := func(n uint64) float64 { return 100 * float64(n) / float64(total) }
	return fmt.Sprintf("%.1f%% within 50 µs, %.1f%% within 200 µs, %.1f%% within 1 ms, %.2f%% within 5 ms, %.2f%% later",
		pct(h[0]), pct(h[0]+h[1]), pct(h[0]+h[1]+h[2]), pct(h[0]+h[1]+h[2]+h[3]), pct(h[4]))
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// writeText writes the profile's summary for the terminal.
func (p ProfileResult) writeText(b *strings.Builder) {
	fmt.Fprintf(b, "\nprofile %s", p.title())
	if p.Skipped != "" {
		fmt.Fprintf(b, ": skipped (%s)\n", p.Skipped)
		return
	}
	fmt.Fprintf(b, ": %s file, cap %v per run", formatSize(p.Size), p.TimeCap)
	if p.Link != "" {
		fmt.Fprintf(b, "; %s; handshake %v; %s", p.Link, p.RTT.Round(10*time.Microsecond), p.CC)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\truns\tmedian MiB/s\tmin MiB/s\tmax MiB/s\tlink use\tmedian s\tpeak RSS MiB\tcpu s\t")
	for _, s := range p.stats() {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%s\t%.2f\t%s\t%.2f\t\n", s.Tool, s.runsText(),
			s.MiBps, s.MinMiBps, s.MaxMiBps, utilText(p, s), s.Wall.Seconds(), mib(s.RSS), s.CPU.Seconds())
	}
	tw.Flush()
	for _, run := range p.Runs {
		if run.Err != "" {
			fmt.Fprintf(b, "FAILED %s round %d: %s\n", run.Tool, run.Round, run.Err)
		}
	}
}

// writeMarkdown writes the profile's section of a report, its heading at
// level h ("##").
func (p ProfileResult) writeMarkdown(b *strings.Builder, h string) {
	fmt.Fprintf(b, "\n%s Profile `%s`, %s %s\n\n", h, p.Name, p.serverRole(), p.Origin)
	if p.Skipped != "" {
		fmt.Fprintf(b, "Skipped: %s.\n", p.Skipped)
		return
	}
	fmt.Fprintf(b, "%s. %s: %s. File: %s; time cap %v per run. TCP congestion control: %s.\n",
		capitalize(p.Describe), capitalize(p.serverRole()), mdEscape(p.Server), formatSize(p.Size), p.TimeCap, p.CC)
	fmt.Fprintf(b, "Load average (1, 5, 15 min) before: %s; after: %s.\n", p.LoadBefore, p.LoadAfter)
	if p.Link != "" {
		fmt.Fprintf(b, "Link: %s; the TCP handshake from client to server measured %v.\n",
			p.Link, p.RTT.Round(10*time.Microsecond))
		if lt := p.LinkTotal; lt != nil {
			fmt.Fprintf(b, "Over the whole profile the link carried %d packets down (%.2f%% dropped at random) and %d up (%.2f%%);\n",
				lt.Down.Packets, 100*lt.Down.LossRate(), lt.Up.Packets, 100*lt.Up.LossRate())
			fmt.Fprintf(b, "the forwarder wrote packets on average %.0f µs after their due time (%s).\n",
				lt.LateMeanMicros, lateText(lt.Late))
		}
	}
	wanCols := p.LinkRate > 0
	b.WriteString("\n| tool | runs | median MiB/s | min–max MiB/s |")
	if wanCols {
		fmt.Fprintf(b, " link use | link bytes / file bytes | %s loss |", p.dataDir())
	}
	b.WriteString(" median time (s) | median peak RSS (MiB) | max peak RSS (MiB) | median CPU (s) | tool's account |\n")
	b.WriteString("| --- | ---: | ---: | ---: |")
	if wanCols {
		b.WriteString(" ---: | ---: | ---: |")
	}
	b.WriteString(" ---: | ---: | ---: | ---: | --- |\n")
	for _, s := range p.stats() {
		fmt.Fprintf(b, "| %s | %s | %.2f | %.2f–%.2f |", s.Tool, s.runsText(), s.MiBps, s.MinMiBps, s.MaxMiBps)
		if wanCols {
			fmt.Fprintf(b, " %s | %.3f | %.2f%% |", utilText(p, s), s.WireRatio, s.LossPct)
		}
		fmt.Fprintf(b, " %.2f | %s | %s | %.2f | %s |\n", s.Wall.Seconds(), mib(s.RSS), mib(s.MaxRSS), s.CPU.Seconds(), s.Metrics)
	}
	b.WriteString("\n<details><summary>Every run</summary>\n\n| round | tool | time (s) | MiB/s | result | peak RSS (MiB) | CPU (s) |")
	if wanCols {
		fmt.Fprintf(b, " packets %s (lost) |", p.dataDir())
	}
	b.WriteString(" tool's account |\n| ---: | --- | ---: | ---: | --- | ---: | ---: |")
	if wanCols {
		b.WriteString(" ---: |")
	}
	b.WriteString(" --- |\n")
	for _, run := range p.Runs {
		res := "sha-256 ok"
		switch {
		case run.Err != "":
			res = "FAILED: " + mdEscape(run.Err)
		case run.Capped:
			res = fmt.Sprintf("capped, %s %s", formatSize(run.Bytes), p.moved())
		}
		fmt.Fprintf(b, "| %d | %s | %.2f | %.2f | %s | %s | %.2f |", run.Round, run.Tool,
			run.Wall.Seconds(), run.MiBps(), res, mib(run.MaxRSS), run.CPU.Seconds())
		if wanCols {
			if run.Link != nil {
				d := p.data(*run.Link)
				fmt.Fprintf(b, " %d (%d) |", d.Packets, d.Lost)
			} else {
				b.WriteString(" – |")
			}
		}
		fmt.Fprintf(b, " %s |\n", run.Metrics)
	}
	b.WriteString("\n</details>\n")
	if len(p.Setup) > 0 {
		b.WriteString("\n<details><summary>How the link was built</summary>\n\n```\n")
		for _, s := range p.Setup {
			b.WriteString(s + "\n")
		}
		b.WriteString("```\n\n</details>\n")
	}
}

// writeProvenance writes how a run was made: its command, when, how many
// rounds (rounds), and the machine and tools, under headings at level h.
func writeProvenance(b *strings.Builder, h, command string, started, finished time.Time, rounds string, machine, tools []KV) {
	fmt.Fprintf(b, "\nProduced by:\n\n```\n%s\n```\n\n", command)
	fmt.Fprintf(b, "on %s (%s in all), %s.\n\n",
		started.Format("2006-01-02 15:04 UTC"), finished.Sub(started).Round(time.Second), rounds)
	fmt.Fprintf(b, "%s Machine\n\n| | |\n| --- | --- |\n", h)
	for _, kv := range machine {
		fmt.Fprintf(b, "| %s | %s |\n", kv.Key, mdEscape(kv.Value))
	}
	fmt.Fprintf(b, "\n%s Tools\n\n| tool | command |\n| --- | --- |\n", h)
	for _, kv := range tools {
		fmt.Fprintf(b, "| %s | `%s` |\n", kv.Key, mdEscape(kv.Value))
	}
}

func writeTrackedText(b *strings.Builder, tracked []Tracked) {
	for _, t := range tracked {
		v := "–"
		if t.OK {
			v = t.Format(t.Value)
		}
		target := ""
		if t.Target > 0 {
			target = "target " + t.Bound() + ": "
		}
		fmt.Fprintf(b, "  %-26s %-40s %8s  %s%s\n", t.where(), t.Name(), v, target, t.Status())
	}
}

func writeTrackedMarkdown(b *strings.Builder, tracked []Tracked) {
	b.WriteString("| profile | figure | value | target | |\n| --- | --- | ---: | ---: | --- |\n")
	for _, t := range tracked {
		v, target := "–", "–"
		if t.OK {
			v = t.Format(t.Value)
		}
		if t.Target > 0 {
			target = t.Bound()
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", t.whereMarkdown(), t.Name(), v, target, t.Status())
	}
}
