package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one benchmark run: every profile's runs and the machine.
type Report struct {
	Command  string
	Started  time.Time
	Finished time.Time
	Size     int64
	Runs     int
	Machine  []KV
	Profiles []ProfileResult
}

// KV is one line of machine information.
type KV struct{ Key, Value string }

// toolStats summarises one tool's successful runs in one profile.
type toolStats struct {
	Tool     string
	OK       int
	Failed   int
	Wall     time.Duration // median
	MiBps    float64       // median
	MinMiBps float64
	MaxMiBps float64
	RSS      int64         // median peak RSS, bytes
	MaxRSS   int64         // largest peak RSS, bytes
	CPU      time.Duration // median
}

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

func (pr ProfileResult) stats(size int64) []toolStats {
	var out []toolStats
	for _, tool := range pr.Tools {
		st := toolStats{Tool: tool}
		var walls, cpus []time.Duration
		var speeds []float64
		var rss []int64
		for _, r := range pr.Runs {
			if r.Tool != tool {
				continue
			}
			if r.Err != "" {
				st.Failed++
				continue
			}
			st.OK++
			walls = append(walls, r.Wall)
			cpus = append(cpus, r.CPU)
			speeds = append(speeds, r.MiBps(size))
			rss = append(rss, r.MaxRSS)
		}
		if st.OK > 0 {
			st.Wall = median(walls)
			st.CPU = median(cpus)
			st.MiBps = median(speeds)
			st.MinMiBps = slices.Min(speeds)
			st.MaxMiBps = slices.Max(speeds)
			st.RSS = median(rss)
			st.MaxRSS = slices.Max(rss)
		}
		out = append(out, st)
	}
	return out
}

// ratio returns ferry's median throughput over curl's, when both ran.
func ratio(stats []toolStats) (float64, bool) {
	var f, c *toolStats
	for i := range stats {
		switch stats[i].Tool {
		case "ferry":
			f = &stats[i]
		case "curl":
			c = &stats[i]
		}
	}
	if f == nil || c == nil || f.OK == 0 || c.OK == 0 || c.MiBps == 0 {
		return 0, false
	}
	return f.MiBps / c.MiBps, true
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

// Text is the summary printed on the terminal.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %d run(s) per tool, %s\n", formatSize(r.Size), r.Runs, r.Command)
	for _, p := range r.Profiles {
		fmt.Fprintf(&b, "\nprofile %s (%s)\n", p.Name, p.Origin)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "tool\truns ok\tmedian s\tmedian MiB/s\tmin MiB/s\tmax MiB/s\tpeak RSS MiB (median)\tcpu s (median)\t")
		for _, s := range p.stats(r.Size) {
			fmt.Fprintf(tw, "%s\t%d/%d\t%.2f\t%.1f\t%.1f\t%.1f\t%s\t%.2f\t\n", s.Tool, s.OK, s.OK+s.Failed,
				s.Wall.Seconds(), s.MiBps, s.MinMiBps, s.MaxMiBps, mib(s.RSS), s.CPU.Seconds())
		}
		tw.Flush()
		if q, ok := ratio(p.stats(r.Size)); ok {
			fmt.Fprintf(&b, "ferry/curl median throughput ratio: %.2f\n", q)
		}
		for _, run := range p.Runs {
			if run.Err != "" {
				fmt.Fprintf(&b, "FAILED %s round %d: %s\n", run.Tool, run.Round, run.Err)
			}
		}
	}
	return b.String()
}

// Markdown is docs/BENCHMARKS.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Whole-file downloads of one file of random bytes, timed from the start of the client process\n")
	b.WriteString("to its exit, then verified by sha-256 (not timed). Tools run interleaved, the first one\n")
	b.WriteString("rotating each round; every run starts after `sync` with no earlier result on disk.\n")
	b.WriteString("Peak RSS is the client's `ru_maxrss`.\n\n")
	fmt.Fprintf(&b, "Produced by:\n\n```\n%s\n```\n\n", r.Command)
	fmt.Fprintf(&b, "on %s (%s), file size %s, %d run(s) per tool.\n\n",
		r.Started.Format("2006-01-02 15:04 UTC"), r.Finished.Sub(r.Started).Round(time.Second), formatSize(r.Size), r.Runs)

	b.WriteString("## Machine\n\n| | |\n| --- | --- |\n")
	for _, kv := range r.Machine {
		fmt.Fprintf(&b, "| %s | %s |\n", kv.Key, mdEscape(kv.Value))
	}

	for _, p := range r.Profiles {
		fmt.Fprintf(&b, "\n## Profile `%s`\n\n%s. Origin: %s.\n\n", p.Name, capitalize(p.Describe), mdEscape(p.Origin))
		b.WriteString("| tool | runs ok | median time (s) | median MiB/s | min–max MiB/s | median peak RSS (MiB) | max peak RSS (MiB) | median CPU (s) |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		stats := p.stats(r.Size)
		for _, s := range stats {
			fmt.Fprintf(&b, "| %s | %d/%d | %.2f | %.1f | %.1f–%.1f | %s | %s | %.2f |\n", s.Tool, s.OK, s.OK+s.Failed,
				s.Wall.Seconds(), s.MiBps, s.MinMiBps, s.MaxMiBps, mib(s.RSS), mib(s.MaxRSS), s.CPU.Seconds())
		}
		if q, ok := ratio(stats); ok {
			fmt.Fprintf(&b, "\n**ferry/curl, median throughput: %.2f** (above 1: ferry is faster).\n", q)
		}
		b.WriteString("\nEvery run:\n\n| round | tool | time (s) | MiB/s | peak RSS (MiB) | CPU (s) | result |\n")
		b.WriteString("| ---: | --- | ---: | ---: | ---: | ---: | --- |\n")
		for _, run := range p.Runs {
			res := "sha-256 ok"
			if run.Err != "" {
				res = "FAILED: " + mdEscape(run.Err)
			}
			fmt.Fprintf(&b, "| %d | %s | %.2f | %.1f | %s | %.2f | %s |\n", run.Round, run.Tool,
				run.Wall.Seconds(), run.MiBps(r.Size), mib(run.MaxRSS), run.CPU.Seconds(), res)
		}
	}

	b.WriteString("\n## Notes\n\n")
	b.WriteString("- `ferry get` writes to `FILE.part`, fsyncs it and renames it into place; `curl -o` writes\n")
	b.WriteString("  the file and exits without fsync. On loopback the disk write is a large part of the time,\n")
	b.WriteString("  so the durability ferry promises is part of what is measured. `curl+fsync`, where listed,\n")
	b.WriteString("  is `curl -s -o FILE URL && sync FILE`: curl with the same durability.\n")
	b.WriteString("- Loopback measures the tools' own cost (CPU, syscalls, disk), not behaviour on a real\n")
	b.WriteString("  network; WAN profiles add delay, loss and rate limits.\n")
	b.WriteString("- Reproduce with the command above from the module root; the test file is kept in the\n")
	b.WriteString("  cache directory (`-cache`) and reused.\n")
	return b.String()
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
