package main

import (
	"context"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

// A Tool is a downloader being measured.
type Tool struct {
	Name string
	// Spec is the tool's entry in toolSpecs: its Name, or that of the
	// ferry tool a baseline build stands in for.
	Spec string
	Bin  string
	// Argv is the command that downloads url to out.
	Argv func(url, out string) []string
	// Partial are the files where a run stopped midway keeps the bytes
	// it fetched (out itself, or a .part file beside it).
	Partial func(out string) []string
	// Version is the tool's own word on its version (first line).
	Version func(ctx context.Context) string
	// Metrics, when set, reads the tool's account of a finished run from
	// what it printed on stdout (ferry's -w).
	Metrics func(stdout string) string
}

type toolSpec struct {
	bin     string
	argv    func(bin, url, out string) []string
	partial func(out string) []string
	version [][]string // argument lists to try, first success wins
	metrics func(stdout string) string
	// optional tools are in the default list only when installed.
	optional bool
}

// ferryWriteOut is the -w format ferry runs print: how many connections
// the download used, how many attempts failed and were retried, and how
// often it started over. It adds no work (no digest).
const ferryWriteOut = `ferry-metrics connections=%{connections} retries=%{retries} restarts=%{restarts}\n`

func ferryArgv(extra ...string) func(bin, url, out string) []string {
	return func(bin, url, out string) []string {
		argv := []string{bin, "get", "-q"}
		argv = append(argv, extra...)
		return append(argv, "-w", ferryWriteOut, url, "-o", out)
	}
}

func ferryMetrics(stdout string) string {
	for line := range strings.Lines(stdout) {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "ferry-metrics "); ok {
			return m
		}
	}
	return ""
}

func aria2Argv(n string) func(bin, url, out string) []string {
	return func(bin, url, out string) []string {
		return []string{bin, "--no-conf", "-q", "-x", n, "-s", n, "-k", "1M", "--file-allocation=none",
			"--allow-overwrite=true", "--auto-file-renaming=false",
			"-d", filepath.Dir(out), "-o", filepath.Base(out), url}
	}
}

var (
	ferryPartial = func(out string) []string { return []string{out, out + ".part"} }
	ferryVersion = [][]string{{"version"}, {"--version"}}
)

var toolSpecs = map[string]toolSpec{
	"curl": {
		bin:     "curl",
		argv:    func(bin, url, out string) []string { return []string{bin, "-s", "-o", out, url} },
		version: [][]string{{"--version"}},
	},
	// curl followed by an fsync of its result: the durability ferry gives
	// its result before it exits, for comparison.
	"curl+fsync": {
		bin: "curl",
		argv: func(bin, url, out string) []string {
			return []string{"/bin/sh", "-c", `"$0" -s -o "$1" "$2" && sync "$1"`, bin, out, url}
		},
		version: [][]string{{"--version"}},
	},
	"wget": {
		bin:     "wget",
		argv:    func(bin, url, out string) []string { return []string{bin, "-q", "-O", out, url} },
		version: [][]string{{"--version"}},
	},
	"wget2": {
		bin:      "wget2",
		argv:     func(bin, url, out string) []string { return []string{bin, "--no-config", "-q", "-O", out, url} },
		version:  [][]string{{"--version"}},
		optional: true,
	},
	"aria2c-x4": {
		bin:     "aria2c",
		argv:    aria2Argv("4"),
		version: [][]string{{"--version"}},
	},
	"aria2c-x8": {
		bin:     "aria2c",
		argv:    aria2Argv("8"),
		version: [][]string{{"--version"}},
	},
	// ferry's default: adaptive connections, from 2 up to 8.
	"ferry": {
		argv:    ferryArgv(),
		partial: ferryPartial,
		version: ferryVersion,
		metrics: ferryMetrics,
	},
	"ferry-x1": {
		argv:    ferryArgv("-x", "1"),
		partial: ferryPartial,
		version: ferryVersion,
		metrics: ferryMetrics,
	},
	"ferry-x8": {
		argv:    ferryArgv("-x", "8"),
		partial: ferryPartial,
		version: ferryVersion,
		metrics: ferryMetrics,
	},
}

// defaultTools are measured unless -tools says otherwise; optional ones
// only when installed.
var defaultTools = []string{"curl", "wget2", "aria2c-x8", "ferry-x1", "ferry-x8", "ferry"}

func defaultToolList() []string {
	var out []string
	for _, name := range defaultTools {
		spec := toolSpecs[name]
		if spec.optional {
			if _, err := peer.FindBinary(spec.bin); err != nil {
				logf("%s is not installed: not measured", spec.bin)
				continue
			}
		}
		out = append(out, name)
	}
	return out
}

func toolNames() []string { return slices.Sorted(maps.Keys(toolSpecs)) }

func lookupTool(name, ferryBin string) (Tool, error) { return lookupToolIn(toolSpecs, name, ferryBin) }

// lookupToolIn is lookupTool in another table (the upload tools').
func lookupToolIn(specs map[string]toolSpec, name, ferryBin string) (Tool, error) {
	spec, ok := specs[name]
	if !ok {
		return Tool{}, fmt.Errorf("unknown tool %q (have: %s)", name, strings.Join(slices.Sorted(maps.Keys(specs)), ", "))
	}
	bin := ferryBin
	if spec.bin != "" {
		var err error
		if bin, err = peer.FindBinary(spec.bin); err != nil {
			return Tool{}, fmt.Errorf("tool %s: %w", name, err)
		}
	}
	t := Tool{
		Name: name,
		Spec: name,
		Bin:  bin,
		Argv: func(url, out string) []string { return spec.argv(bin, url, out) },
		Partial: func(out string) []string {
			if spec.partial == nil {
				return []string{out}
			}
			return spec.partial(out)
		},
		Metrics: spec.metrics,
	}
	t.Version = func(ctx context.Context) string {
		for _, args := range spec.version {
			if v := firstLine(ctx, bin, args...); v != "" {
				return v
			}
		}
		return "unknown"
	}
	return t, nil
}

// baselineTools are the ferry tools among chosen (of specs) run with another ferry
// binary, bin (an earlier build), named NAME@base, so that a build is
// measured against the one before it in one sitting.
func baselineTools(specs map[string]toolSpec, chosen []Tool, bin string) []Tool {
	var out []Tool
	for _, t := range chosen {
		if specs[t.Spec].bin != "" {
			continue // not ferry
		}
		b, err := lookupToolIn(specs, t.Spec, bin)
		if err != nil {
			continue
		}
		b.Name = t.Spec + "@base"
		out = append(out, b)
	}
	return out
}

// Command is the tool's command line as the report shows it.
func (t Tool) Command() string {
	argv := t.Argv("URL", "DIR/FILE")
	argv[0] = filepath.Base(argv[0])
	for i, a := range argv {
		argv[i] = shellQuote(a)
	}
	return strings.Join(argv, " ")
}

// firstLine runs a short command and returns the first line it printed, or
// "" when it failed.
func firstLine(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}
