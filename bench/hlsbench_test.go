package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

func TestPlaylistURIs(t *testing.T) {
	pl := "#EXTM3U\n#EXT-X-TARGETDURATION:2\r\n#EXTINF:2,\r\n000000-ab.ts\r\n\n#EXTINF:2,\n  sub/000001-cd.ts  \n#EXT-X-ENDLIST\n"
	if got, want := playlistURIs(pl), []string{"000000-ab.ts", "sub/000001-cd.ts"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := playlistURIs("#EXTM3U\n#EXT-X-ENDLIST"); len(got) != 0 {
		t.Errorf("no segments: got %q", got)
	}
}

func TestYTDLPFragments(t *testing.T) {
	out := "[generic] index: Downloading m3u8 information\n[info] index: Downloading 1 format(s): 0\n" +
		"[hlsnative] Downloading m3u8 manifest\n[hlsnative] Total fragments: 300\n[download] Destination: /w/out.ts\n"
	if n, ok := ytdlpFragments(out); !ok || n != 300 {
		t.Errorf("got %d, %v; want 300", n, ok)
	}
	// ffmpeg as its downloader prints no such line.
	if _, ok := ytdlpFragments("[download] Destination: out.mp4\n[download] 100% of 118.28MiB\n"); ok {
		t.Error("found fragments where there are none")
	}
	if _, ok := ytdlpFragments("[hlsnative] Total fragments: many\n"); ok {
		t.Error("took a non-number")
	}
}

func hlsTestSection(body string) string {
	return hlsSectionStart + "\n## HLS downloads\n\n" + body + "\n" + hlsSectionEnd + "\n"
}

func TestHLSSectionPlacement(t *testing.T) {
	stream := testSection // from streamlat_test.go
	hls := hlsTestSection("new")
	for _, c := range []struct{ name, doc, want string }{
		{"after the stream section at the end", "# B\n\n" + stream, "# B\n\n" + stream + "\n" + hls},
		{"after the stream section in the middle", "# B\n\n" + stream + "\n## More\n", "# B\n\n" + stream + "\n" + hls + "\n## More\n"},
		{"after a stream section without its final newline", "# B\n\n" + strings.TrimSuffix(stream, "\n"), "# B\n\n" + stream + "\n" + hls},
		{"appended without a stream section", "# B\n", "# B\n\n" + hls},
		{"replaced where it is", "# B\n\n" + hlsTestSection("old") + "\n" + stream, "# B\n\n" + hls + "\n" + stream},
	} {
		got, err := hlsDocSection.with(c.doc, hls, streamDocSection)
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := hlsDocSection.with("x\n"+hlsSectionStart+"\nold\n", hls, streamDocSection); err == nil {
		t.Error("a section without its end line: no error")
	}
}

// A full run rewrites the report and carries both sections over, the HLS
// one after the stream latency one, each once; a second run changes
// nothing.
func TestKeepSections(t *testing.T) {
	fresh := testReport().Markdown()
	if strings.Contains(fresh, hlsSectionStart) {
		t.Fatal("the harness's report has an HLS section of its own")
	}
	stream, hls := testSection, hlsTestSection("figures")
	got := keepSections(fresh, "# Benchmarks\n\nold\n\n"+stream+"\n"+hls)
	if want := fresh + "\n" + stream + "\n" + hls; got != want {
		t.Errorf("both sections: got\n%s\nwant\n%s", got, want)
	}
	if again := keepSections(fresh, got); again != got {
		t.Errorf("a second full run changed the report:\n%s", again)
	}
	if got := keepSections(fresh, "old\n\n"+hls); got != fresh+"\n"+hls {
		t.Errorf("HLS section alone: got\n%s", got)
	}
	if got := keepSections(fresh, "old\n\n"+hlsSectionStart+"\nunterminated\n"); got != fresh {
		t.Errorf("unterminated HLS section: the new report changed")
	}
}

// hlsTestSource makes a stream of n small segments under root/hls/long as
// hlsgen lays it out, without ffmpeg.
func hlsTestSource(t *testing.T, n int) *hlsSource {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "hls", "long")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pl := "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n"
	for i := range n {
		name := fmt.Sprintf("seg%03d.ts", i)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Repeat(string(rune('a'+i)), 100+i)), 0o644); err != nil {
			t.Fatal(err)
		}
		pl += "#EXTINF:2.000000,\n" + name + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "index.m3u8"), []byte(pl+"#EXT-X-ENDLIST\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := loadHLSSource(&peer.HLSStream{Kind: peer.HLSLong, Dir: dir, Playlist: "hls/long/index.m3u8", Duration: float64(2 * n), Segments: n}, root)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestLoadHLSSource(t *testing.T) {
	src := hlsTestSource(t, 3)
	if len(src.Files) != 3 || src.Bytes != 100+101+102 || !slices.Equal(src.Sizes, []int64{100, 101, 102}) {
		t.Errorf("files %v, sizes %v, bytes %d", src.Files, src.Sizes, src.Bytes)
	}
	// A stray .ts file beside the segments makes the sizes disagree.
	if err := os.WriteFile(filepath.Join(src.Dir, "stray.ts"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadHLSSource(src.HLSStream, src.Root); err == nil {
		t.Error("stray .ts file: no error")
	}
}

func TestVerifyFerryHLS(t *testing.T) {
	ctx := context.Background()
	src := hlsTestSource(t, 3)
	mk := func(mutate func(dir string, names []string) string) string {
		dir := t.TempDir()
		var names []string
		for i, f := range src.Files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, fmt.Sprintf("%06d-%08x.ts", i, i*7))
			if err := os.WriteFile(filepath.Join(dir, names[i]), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		pl := "#EXTM3U\n"
		if mutate != nil {
			pl += mutate(dir, names)
		} else {
			for _, n := range names {
				pl += "#EXTINF:2,\n" + n + "\n"
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "index.m3u8"), []byte(pl+"#EXT-X-ENDLIST\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stored, check, err := verifyFerryHLS(ctx, src, mk(nil), clientRun{})
	if err != nil || stored != src.Bytes || !strings.Contains(check, "3 segments") {
		t.Errorf("good result: %d, %q, %v", stored, check, err)
	}
	bad := map[string]func(dir string, names []string) string{
		"a segment left out": func(_ string, names []string) string { return names[0] + "\n" + names[2] + "\n" },
		"segments out of order": func(_ string, names []string) string {
			return names[1] + "\n" + names[0] + "\n" + names[2] + "\n"
		},
		"a missing file": func(dir string, names []string) string {
			os.Remove(filepath.Join(dir, names[1]))
			return strings.Join(names, "\n") + "\n"
		},
		"a changed byte": func(dir string, names []string) string {
			f := filepath.Join(dir, names[2])
			b, _ := os.ReadFile(f)
			b[10] ^= 1
			os.WriteFile(f, b, 0o644)
			return strings.Join(names, "\n") + "\n"
		},
	}
	for name, mutate := range bad {
		if _, _, err := verifyFerryHLS(ctx, src, mk(mutate), clientRun{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestVerifyYTDLP(t *testing.T) {
	ctx := context.Background()
	src := hlsTestSource(t, 3)
	var joined []byte
	for _, f := range src.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, b...)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, hlsOutput)
	if err := os.WriteFile(out, joined, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := clientRun{Stdout: "[hlsnative] Total fragments: 3\n"}
	if stored, _, err := verifyYTDLP(ctx, src, dir, ok); err != nil || stored != src.Bytes {
		t.Errorf("good result: %d, %v", stored, err)
	}
	if _, _, err := verifyYTDLP(ctx, src, dir, clientRun{Stderr: "[hlsnative] Total fragments: 2\n"}); err == nil {
		t.Error("2 fragments of 3: no error")
	}
	if _, _, err := verifyYTDLP(ctx, src, dir, clientRun{}); err == nil {
		t.Error("no fragment count: no error")
	}
	joined[0] ^= 1
	if err := os.WriteFile(out, joined, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := verifyYTDLP(ctx, src, dir, ok); err == nil {
		t.Error("a changed byte: no error")
	}
	if err := os.WriteFile(out, joined[1:], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := verifyYTDLP(ctx, src, dir, ok); err == nil {
		t.Error("a short file: no error")
	}
}

func TestHLSToolCommands(t *testing.T) {
	want := map[string]string{
		"ferry":     "ferry hls URL -o DIR -q",
		"ferry-x16": "ferry hls URL -o DIR -q -x 16",
		"yt-dlp-N8": "yt-dlp --ignore-config --no-cache-dir -N 8 --downloader m3u8:native --fixup never --abort-on-unavailable-fragments --no-part --no-progress -o DIR/out.ts URL",
		"ffmpeg":    "ffmpeg -nostdin -v error -y -i URL -c copy DIR/out.ts",
	}
	tools := hlsTools("/b/ferry", "/usr/bin/yt-dlp", "/usr/bin/ffmpeg", "/usr/bin/ffprobe")
	if len(tools) != len(want) {
		t.Fatalf("%d tools", len(tools))
	}
	for _, tool := range tools {
		if got := tool.Command(); got != want[tool.Name] {
			t.Errorf("%s: %s\nwant %s", tool.Name, got, want[tool.Name])
		}
	}
	for _, g := range hlsGoals {
		if !slices.ContainsFunc(tools, func(t hlsTool) bool { return t.Name == g.Num }) ||
			!slices.ContainsFunc(tools, func(t hlsTool) bool { return t.Name == g.Den }) {
			t.Errorf("goal %s names a tool that is not measured", g.Name())
		}
	}
}

func testHLSReport(runs int) *hlsReport {
	const bytes = 118 << 20
	r := &hlsReport{
		Command: "go run ./bench hls", Runs: runs, TimeCap: 4 * time.Minute,
		Profile: "wan50", Describe: "an emulated WAN link", Link: "RTT 50ms", CC: "cubic", Origin: "nginx/1.22.1", LinkRate: 100e6,
		Playlist: "hls/long/index.m3u8", Segments: 300, Bytes: bytes, Duration: 600,
		Tools: []KV{{"ferry", "ferry hls URL -o DIR -q"}, {"ferry-x16", "x"}, {"yt-dlp-N8", "y"}, {"ffmpeg", "z"}},
	}
	add := func(tool string, secs ...float64) {
		for i, s := range secs {
			x := hlsRun{Run: Run{Tool: tool, Round: i + 1, Wall: time.Duration(s * float64(time.Second)), Bytes: bytes, MaxRSS: 20 << 20}, Stored: bytes}
			r.Results = append(r.Results, x)
		}
	}
	add("ferry", 12, 10, 11)
	add("ferry-x16", 9, 8, 30)
	add("yt-dlp-N8", 15, 22, 18)
	add("ffmpeg", 50, 45, 240)
	r.Results[len(r.Results)-1].Capped = true // ffmpeg's third
	return r
}

func TestHLSReportFigures(t *testing.T) {
	r := testHLSReport(3)
	st := r.stats()
	if st[0].Tool != "ferry" || st[0].Wall != 11*time.Second || st[0].MinWall != 10*time.Second || st[0].MaxWall != 12*time.Second {
		t.Errorf("ferry stats %+v", st[0])
	}
	if st[3].Capped != 1 || st[3].Completed != 2 || st[3].Wall != 50*time.Second || st[3].atLeast() == "" {
		t.Errorf("ffmpeg stats %+v", st[3])
	}
	got := map[string]hlsFigure{}
	for _, f := range r.figures() {
		got[f.Name()] = f
	}
	check := func(name string, want float64, lower bool, status string) {
		t.Helper()
		f := got[name]
		if !f.OK || fmt.Sprintf("%.4f", f.Value) != fmt.Sprintf("%.4f", want) || f.LowerBound != lower || f.Status() != status {
			t.Errorf("%s: %v (lower bound %v, %s); want %v (%v, %s)", name, f.Value, f.LowerBound, f.Status(), want, lower, status)
		}
	}
	check("ferry / yt-dlp-N8", 18.0/11, false, "met")
	check("ferry / ffmpeg", 50.0/11, true, "MISSED")
	check("ferry-x16 / yt-dlp-N8", 18.0/9, false, "(no target)")
	if v := got["ferry / ffmpeg"].value(); v != "≥ 4.55x" {
		t.Errorf("lower bound shown as %q", v)
	}
	// Just short of its target, a figure does not round up to it.
	near := hlsFigure{Tracked: Tracked{Num: "a", Den: "b", Target: 1.5, Value: 1.4996, OK: true}}
	if v := near.value(); v != "1.499x" || near.Status() != "MISSED" {
		t.Errorf("1.4996 against 1.5: %s, %s", v, near.Status())
	}

	// A failed run is left out of the medians; a capped ferry is not
	// compared.
	r.Results[0].Err = "exit 1: boom"
	r.Results[1].Capped = true
	for _, f := range r.figures() {
		if f.Num == "ferry" && (f.OK || f.Status() != "not measured") {
			t.Errorf("%s with a capped ferry: %v, %s", f.Name(), f.Value, f.Status())
		}
	}
	if r.Failures() != 1 || r.stats()[0].Failed != 1 {
		t.Errorf("failures: %d", r.Failures())
	}
}

func TestHLSReportSection(t *testing.T) {
	r := testHLSReport(3)
	sec := hlsSection([]*hlsReport{r})
	if !strings.HasPrefix(sec, hlsSectionStart+"\n") || !strings.HasSuffix(sec, hlsSectionEnd+"\n") || strings.Count(sec, hlsSectionStart) != 1 {
		t.Errorf("section not delimited:\n%s", sec)
	}
	for _, want := range []string{"| ferry | 3 | 11.00 | 10.00–12.00 |", "| ffmpeg | 2+1 capped | ≥ 50.00 |",
		"| ferry / yt-dlp-N8 | 1.64x | ≥ 1.50x | met | 1.74x |", "| ferry / ffmpeg | ≥ 4.55x | ≥ 5.00x | MISSED | ≥ 4.83x |",
		"no tool downloads the stream in less than 10.35 s",
		"300 segments, 600 s, 118 MiB", "go run ./bench hls", "`ferry hls URL -o DIR -q`"} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}
	if strings.Contains(sec, "smoke") || strings.Contains(r.Text(), "smoke") {
		t.Error("3 runs marked as a smoke run")
	}
	text := r.Text()
	for _, want := range []string{"ferry-x16", "yt-dlp-N8", "ferry / ffmpeg", "target ≥ 5.00x: MISSED"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	one := testHLSReport(1)
	if !strings.Contains(hlsSection([]*hlsReport{one}), "smoke run") || !strings.Contains(one.Text(), "smoke run") {
		t.Error("1 run not marked as a smoke run")
	}
	// The section goes into a report as a section that full runs keep.
	doc, err := hlsDocSection.with("# Benchmarks\n\n"+testSection, sec, streamDocSection)
	if err != nil || keepSections(testReport().Markdown(), doc) != testReport().Markdown()+"\n"+testSection+"\n"+sec {
		t.Errorf("the section was not carried over: %v", err)
	}
}
