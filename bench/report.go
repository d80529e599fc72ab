package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
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
				wire += r.Link.Down.Bytes
				pkts += r.Link.Down.Packets
				lost += r.Link.Down.Lost
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
	Num     string // tool
	Den     string // tool; "" means link utilisation of Num
	// RSS makes the figure Num's largest peak RSS in MiB, with Target
	// as a ceiling.
	RSS    bool
	Target float64
	Value  float64
	OK     bool // Value was measured
}

func (t Tracked) Name() string {
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
func (r *Report) Tracked() []Tracked {
	var out []Tracked
	for _, t := range trackedFigures {
		for _, p := range r.Profiles {
			if p.Name != t.Profile || p.Origin != "nginx" || p.Skipped != "" {
				continue
			}
			stats := p.stats()
			find := func(name string) *toolStats {
				for i := range stats {
					if stats[i].Tool == name && stats[i].Counted() > 0 {
						return &stats[i]
					}
				}
				return nil
			}
			num := find(t.Num)
			if num == nil {
				continue
			}
			switch {
			case t.RSS:
				// A run that failed (killed for memory, say) leaves
				// the figure unmeasured rather than met.
				if num.Failed == 0 {
					t.Value, t.OK = float64(num.MaxRSS)/(1<<20), true
				}
			case t.Den == "":
				if p.LinkRate > 0 {
					t.Value, t.OK = num.Util, true
				}
			default:
				if den := find(t.Den); den != nil && den.MiBps > 0 {
					t.Value, t.OK = num.MiBps/den.MiBps, true
				}
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
	var b strings.Builder
	fmt.Fprintf(&b, "%d round(s), %s\n", r.Runs, r.Command)
	for _, p := range r.Profiles {
		fmt.Fprintf(&b, "\nprofile %s", p.title())
		if p.Skipped != "" {
			fmt.Fprintf(&b, ": skipped (%s)\n", p.Skipped)
			continue
		}
		fmt.Fprintf(&b, ": %s file, cap %v per run", formatSize(p.Size), p.TimeCap)
		if p.Link != "" {
			fmt.Fprintf(&b, "; %s; handshake %v; %s", p.Link, p.RTT.Round(10*time.Microsecond), p.CC)
		}
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "tool\truns\tmedian MiB/s\tmin MiB/s\tmax MiB/s\tlink use\tmedian s\tpeak RSS MiB\tcpu s\t")
		for _, s := range p.stats() {
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%s\t%.2f\t%s\t%.2f\t\n", s.Tool, s.runsText(),
				s.MiBps, s.MinMiBps, s.MaxMiBps, utilText(p, s), s.Wall.Seconds(), mib(s.RSS), s.CPU.Seconds())
		}
		tw.Flush()
		for _, run := range p.Runs {
			if run.Err != "" {
				fmt.Fprintf(&b, "FAILED %s round %d: %s\n", run.Tool, run.Round, run.Err)
			}
		}
	}
	b.WriteString("\ntracked figures (median throughput or largest peak RSS, nginx origin):\n")
	for _, t := range r.Tracked() {
		v := "–"
		if t.OK {
			v = t.Format(t.Value)
		}
		target := ""
		if t.Target > 0 {
			target = "target " + t.Bound() + ": "
		}
		fmt.Fprintf(&b, "  %-12s %-32s %8s  %s%s\n", t.Profile, t.Name(), v, target, t.Status())
	}
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
	b.WriteString("| profile | figure | value | target | |\n| --- | --- | ---: | ---: | --- |\n")
	for _, t := range r.Tracked() {
		v, target := "–", "–"
		if t.OK {
			v = t.Format(t.Value)
		}
		if t.Target > 0 {
			target = t.Bound()
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", t.Profile, t.Name(), v, target, t.Status())
	}

	fmt.Fprintf(&b, "\nProduced by:\n\n```\n%s\n```\n\n", r.Command)
	fmt.Fprintf(&b, "on %s (%s in all), %d round(s) per tool and profile.\n\n",
		r.Started.Format("2006-01-02 15:04 UTC"), r.Finished.Sub(r.Started).Round(time.Second), r.Runs)

	b.WriteString("## Machine\n\n| | |\n| --- | --- |\n")
	for _, kv := range r.Machine {
		fmt.Fprintf(&b, "| %s | %s |\n", kv.Key, mdEscape(kv.Value))
	}

	b.WriteString("\n## Tools\n\n| tool | command |\n| --- | --- |\n")
	for _, kv := range r.Tools {
		fmt.Fprintf(&b, "| %s | `%s` |\n", kv.Key, mdEscape(kv.Value))
	}
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
		fmt.Fprintf(&b, "\n## Profile `%s`, origin %s\n\n", p.Name, p.Origin)
		if p.Skipped != "" {
			fmt.Fprintf(&b, "Skipped: %s.\n", p.Skipped)
			continue
		}
		fmt.Fprintf(&b, "%s. Origin: %s. File: %s; time cap %v per run. TCP congestion control: %s.\n",
			capitalize(p.Describe), mdEscape(p.Server), formatSize(p.Size), p.TimeCap, p.CC)
		fmt.Fprintf(&b, "Load average (1, 5, 15 min) before: %s; after: %s.\n", p.LoadBefore, p.LoadAfter)
		if p.Link != "" {
			fmt.Fprintf(&b, "Link: %s; the TCP handshake from client to server measured %v.\n",
				p.Link, p.RTT.Round(10*time.Microsecond))
			if lt := p.LinkTotal; lt != nil {
				fmt.Fprintf(&b, "Over the whole profile the link carried %d packets down (%.2f%% dropped at random) and %d up (%.2f%%);\n",
					lt.Down.Packets, 100*lt.Down.LossRate(), lt.Up.Packets, 100*lt.Up.LossRate())
				fmt.Fprintf(&b, "the forwarder wrote packets on average %.0f µs after their due time (%s).\n",
					lt.LateMeanMicros, lateText(lt.Late))
			}
		}
		wanCols := p.LinkRate > 0
		b.WriteString("\n| tool | runs | median MiB/s | min–max MiB/s |")
		if wanCols {
			b.WriteString(" link use | link bytes / file bytes | down loss |")
		}
		b.WriteString(" median time (s) | median peak RSS (MiB) | max peak RSS (MiB) | median CPU (s) | tool's account |\n")
		b.WriteString("| --- | ---: | ---: | ---: |")
		if wanCols {
			b.WriteString(" ---: | ---: | ---: |")
		}
		b.WriteString(" ---: | ---: | ---: | ---: | --- |\n")
		for _, s := range p.stats() {
			fmt.Fprintf(&b, "| %s | %s | %.2f | %.2f–%.2f |", s.Tool, s.runsText(), s.MiBps, s.MinMiBps, s.MaxMiBps)
			if wanCols {
				fmt.Fprintf(&b, " %s | %.3f | %.2f%% |", utilText(p, s), s.WireRatio, s.LossPct)
			}
			fmt.Fprintf(&b, " %.2f | %s | %s | %.2f | %s |\n", s.Wall.Seconds(), mib(s.RSS), mib(s.MaxRSS), s.CPU.Seconds(), s.Metrics)
		}
		b.WriteString("\n<details><summary>Every run</summary>\n\n| round | tool | time (s) | MiB/s | result | peak RSS (MiB) | CPU (s) |")
		if wanCols {
			b.WriteString(" packets down (lost) |")
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
				res = fmt.Sprintf("capped, %s fetched", formatSize(run.Bytes))
			}
			fmt.Fprintf(&b, "| %d | %s | %.2f | %.2f | %s | %s | %.2f |", run.Round, run.Tool,
				run.Wall.Seconds(), run.MiBps(), res, mib(run.MaxRSS), run.CPU.Seconds())
			if wanCols {
				if run.Link != nil {
					fmt.Fprintf(&b, " %d (%d) |", run.Link.Down.Packets, run.Link.Down.Lost)
				} else {
					b.WriteString(" – |")
				}
			}
			fmt.Fprintf(&b, " %s |\n", run.Metrics)
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
	b.WriteString("- `go run ./bench stream` and `go run ./bench hls` measure on their own and write\n")
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
