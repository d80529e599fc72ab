package main

import (
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferryhq/ferry/internal/peer/wan"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "64MiB": 64 << 20, "2M": 2 << 20, "1000": 1000, "1.5KiB": 1536} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1M", "0"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q): no error", bad)
		}
	}
}

func TestParsePerProfile(t *testing.T) {
	m, err := parsePerProfile("wan50=64MiB, capped=1GiB", parseSize)
	if err != nil || m["wan50"] != 64<<20 || m["capped"] != 1<<30 || len(m) != 2 {
		t.Errorf("got %v, %v", m, err)
	}
	for _, bad := range []string{"nosuch=1M", "wan50", "wan50=x"} {
		if _, err := parsePerProfile(bad, parseSize); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestOptionsSizeAndCap(t *testing.T) {
	p, _ := lookupProfile("wan50-loss1")
	o := options{}
	if o.size(p) != p.Size || o.timeCap(p) != p.TimeCap {
		t.Errorf("defaults: %d %v", o.size(p), o.timeCap(p))
	}
	o.quick = true
	if o.size(p) != p.QuickSize || o.timeCap(p) != p.QuickCap {
		t.Errorf("quick: %d %v", o.size(p), o.timeCap(p))
	}
	o.sizeAll, o.capAll = 5<<20, time.Minute
	if o.size(p) != 5<<20 || o.timeCap(p) != time.Minute {
		t.Errorf("-size, -timecap: %d %v", o.size(p), o.timeCap(p))
	}
	o.sizes, o.caps = map[string]int64{"wan50-loss1": 7 << 20}, map[string]time.Duration{"wan50-loss1": time.Second}
	if o.size(p) != 7<<20 || o.timeCap(p) != time.Second {
		t.Errorf("-sizes, -timecaps: %d %v", o.size(p), o.timeCap(p))
	}
}

func TestDataBytes(t *testing.T) {
	dir := t.TempDir()
	// Written in order.
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, make([]byte, 100<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := dataBytes(plain); n != 100<<10 {
		t.Errorf("plain file: %d data bytes", n)
	}
	// Preallocated to 8 MiB with 1 MiB written at 2 MiB, as a segmented
	// download stopped midway leaves it.
	pre := filepath.Join(dir, "pre")
	f, err := os.Create(pre)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 8<<20); err != nil {
		if err := f.Truncate(8 << 20); err != nil { // sparse instead
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = 1
	}
	if _, err := f.WriteAt(buf, 2<<20); err != nil {
		t.Fatal(err)
	}
	if n := dataBytes(pre); n != 1<<20 {
		t.Errorf("preallocated file with 1 MiB written: %d data bytes", n)
	}
	if n := dataBytes(filepath.Join(dir, "none")); n != 0 {
		t.Errorf("missing file: %d", n)
	}
}

func testReport() *Report {
	runs := func(tool string, mibps ...float64) []Run {
		var out []Run
		for i, v := range mibps {
			out = append(out, Run{Tool: tool, Round: i + 1, Wall: time.Second, Bytes: int64(v * (1 << 20))})
		}
		return out
	}
	lossy := ProfileResult{Name: "wan50-loss1", Origin: "nginx", LinkRate: 100e6, Tools: []string{"curl", "aria2c-x8", "ferry-x8"}}
	lossy.Runs = append(lossy.Runs, runs("curl", 0.4, 0.5, 0.3)...)
	lossy.Runs[0].Capped = true
	lossy.Runs = append(lossy.Runs, runs("aria2c-x8", 2, 3, 2.5)...)
	lossy.Runs = append(lossy.Runs, runs("ferry-x8", 3, 2, 3)...)
	lossy.Runs[len(lossy.Runs)-1].Link = &wan.Stats{Down: wan.DirStats{Packets: 100, Lost: 1, Bytes: 4 << 20}}
	wan50 := ProfileResult{Name: "wan50", Origin: "nginx", LinkRate: 100e6, Tools: []string{"ferry-x8"}, Runs: runs("ferry-x8", 11)}
	failed := ProfileResult{Name: "loopback", Origin: "nginx", Tools: []string{"curl", "ferry"},
		Runs: []Run{{Tool: "curl", Err: "exit 7"}, {Tool: "ferry", Wall: time.Second, Bytes: 1 << 30}}}
	return &Report{Runs: 3, Profiles: []ProfileResult{lossy, wan50, failed}}
}

func TestTracked(t *testing.T) {
	r := testReport()
	got := map[string]Tracked{}
	for _, tr := range r.Tracked() {
		got[tr.Profile+" "+tr.Name()] = tr
	}
	check := func(key string, want float64, ok bool, status string) {
		t.Helper()
		tr := got[key]
		if tr.OK != ok || ok && math.Abs(tr.Value-want) > 1e-4*want || tr.Status() != status {
			t.Errorf("%s = %v (ok %v, %s); want %v (ok %v, %s)", key, tr.Value, tr.OK, tr.Status(), want, ok, status)
		}
	}
	check("wan50-loss1 ferry-x8 / curl", 3/0.4, true, "met") // medians 3 and 0.4
	check("wan50-loss1 ferry-x8 / aria2c-x8", 3/2.5, true, "met")
	check("wan50 ferry-x8 link utilisation", 11*(1<<20)*8/100e6, true, "met")
	check("capped ferry-x8 / ferry-x1", 0, false, "not measured")
	check("loopback ferry / curl", 0, false, "not measured") // curl failed

	st := r.Profiles[0].stats()
	if st[0].Tool != "curl" || st[0].Capped != 1 || st[0].Completed != 2 {
		t.Errorf("curl stats %+v", st[0])
	}
	if st[2].WireRatio != 4.0/3 || st[2].LossPct != 1 {
		t.Errorf("ferry-x8 wire ratio %v, loss %v%%", st[2].WireRatio, st[2].LossPct)
	}
	if r.Failures() != 1 {
		t.Errorf("%d failures, want 1", r.Failures())
	}
}

func TestChartIsSVG(t *testing.T) {
	svg := testReport().Chart()
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed XML: %v\n%s", err, svg)
			}
			break
		}
	}
	for _, want := range []string{"<svg ", "wan50-loss1", "ferry-x8", "aria2c-x8", "url(#hatch)", ">failed<", "MiB/s"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if empty := (&Report{}).Chart(); !strings.Contains(empty, "no results") {
		t.Errorf("empty chart: %s", empty)
	}
}

func TestFerryMetrics(t *testing.T) {
	if m := ferryMetrics("ferry-metrics connections=8 retries=2 restarts=0\n"); m != "connections=8 retries=2 restarts=0" {
		t.Errorf("got %q", m)
	}
	if m := parseMetrics("connections=8 retries=2 bad x=y"); m["connections"] != 8 || m["retries"] != 2 || len(m) != 2 {
		t.Errorf("parseMetrics: %v", m)
	}
}
