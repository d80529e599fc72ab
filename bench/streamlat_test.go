package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

const testSection = streamSectionStart + "\n## Live stream latency\n\nnew figures\n" + streamSectionEnd + "\n"

func TestWithStreamSection(t *testing.T) {
	old := streamSectionStart + "\nold figures\n" + streamSectionEnd + "\n"
	for _, c := range []struct{ name, doc, want string }{
		{"empty", "", testSection},
		{"appended", "# Benchmarks\n\ntext\n", "# Benchmarks\n\ntext\n\n" + testSection},
		{"appended without final newline", "text", "text\n\n" + testSection},
		{"appended after a blank line", "text\n\n", "text\n\n" + testSection},
		{"replaced at the end", "text\n\n" + old, "text\n\n" + testSection},
		{"replaced in the middle", "text\n\n" + old + "\n## Notes\n", "text\n\n" + testSection + "\n## Notes\n"},
		{"replaced without final newline", "text\n\n" + strings.TrimSuffix(old, "\n"), "text\n\n" + testSection},
		{"delimiters only count as whole lines",
			"see `" + streamSectionStart + "` and `" + streamSectionEnd + "`\n",
			"see `" + streamSectionStart + "` and `" + streamSectionEnd + "`\n\n" + testSection},
		{"a stray end line before the section stays",
			streamSectionEnd + "\n" + old, streamSectionEnd + "\n" + testSection},
	} {
		got, err := streamDocSection.with(c.doc, testSection)
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := streamDocSection.with("text\n"+streamSectionStart+"\nfigures\n## Notes\n", testSection); err == nil {
		t.Error("a section without its end line: no error (it would be replaced up to where?)")
	}
}

// A full run rewrites the report: the section of the last stream
// run stays, once, and nothing is added when there was none.
func TestKeepStreamSection(t *testing.T) {
	fresh := testReport().Markdown()
	if strings.Contains(fresh, streamSectionStart) {
		t.Fatal("the harness's report has a stream latency section of its own")
	}
	if got := keepSections(fresh, "# Benchmarks\n\nolder report\n"); got != fresh {
		t.Errorf("old report without a section: the new one changed")
	}
	if got := keepSections(fresh, "x\n"+streamSectionStart+"\nunterminated\n"); got != fresh {
		t.Errorf("old report with an unterminated section: the new one changed")
	}
	old := "# Benchmarks\n\nolder report\n\n" + testSection
	got := keepSections(fresh, old)
	if !strings.HasPrefix(got, fresh) || !strings.HasSuffix(got, "\n\n"+testSection) || strings.Count(got, streamSectionStart) != 1 {
		t.Errorf("the section was not carried over at the end, once:\n%s", got)
	}
	// Carried over again, it stays as it is.
	if again := keepSections(fresh, got); again != got {
		t.Errorf("a second full run changed the report:\n%s", again)
	}
	// A section without a final newline comes over whole.
	if got := keepSections("new\n", "old\n\n"+strings.TrimSuffix(testSection, "\n")); got != "new\n\n"+testSection {
		t.Errorf("got %q", got)
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 1000; i++ {
		s = append(s, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 500, 90: 900, 99: 990, 100: 1000, 0: 1} {
		if got := percentile(s, p); got != want {
			t.Errorf("p%v of 1..1000 = %d, want %d", p, got, want)
		}
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one = %d", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of none = %d", got)
	}
}

// The measurement's plumbing, every variant for a fraction of a second:
// every frame arrives once, in order, and the figures are ordered. Timing
// is not judged here; the goal lives in the benchmark's output.
func TestStreamLatencyPlumbing(t *testing.T) {
	d := 250 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := measureStreams(ctx, d, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(streamVariants) {
		t.Fatalf("%d results for %d variants", len(results), len(streamVariants))
	}
	for _, r := range results {
		want := int(d / frameEvery)
		if r.Sent != want || r.Frames != want {
			t.Errorf("%s: %d frames sent, %d processed; want %d", r.Variant.Name, r.Sent, r.Frames, want)
		}
		if !(0 < r.P50 && r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) {
			t.Errorf("%s: p50 %v, p90 %v, p99 %v, max %v: not ordered", r.Variant.Name, r.P50, r.P90, r.P99, r.Max)
		}
		if wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[r.Variant.HTTP2]; r.Proto != wantProto {
			t.Errorf("%s: spoke %s", r.Variant.Name, r.Proto)
		}
	}
	rep := &streamReport{Command: "go run ./bench stream", Started: time.Now().UTC(), Duration: d, Machine: "nproc 1", Results: results}
	sec := rep.Section()
	if !strings.HasPrefix(sec, streamSectionStart+"\n") || !strings.HasSuffix(sec, streamSectionEnd+"\n") {
		t.Errorf("section not delimited:\n%s", sec)
	}
	for _, v := range streamVariants {
		if !strings.Contains(sec, "| "+v.Name+" |") || !strings.Contains(rep.Text(), v.Name) {
			t.Errorf("report lacks %s:\n%s\n%s", v.Name, sec, rep.Text())
		}
	}
}
