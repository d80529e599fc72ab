package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

// A Tool is a downloader being measured.
type Tool struct {
	Name string
	Bin  string
	// Argv is the command that downloads url to out.
	Argv func(url, out string) []string
	// Leftovers are files a run may leave next to out.
	Leftovers func(out string) []string
	// Version is the tool's own word on its version (first line).
	Version func(ctx context.Context) string
}

type toolSpec struct {
	bin     string
	argv    func(bin, url, out string) []string
	left    func(out string) []string
	version [][]string // argument lists to try, first success wins
}

var toolSpecs = map[string]toolSpec{
	"curl": {
		bin:     "curl",
		argv:    func(bin, url, out string) []string { return []string{bin, "-s", "-o", out, url} },
		version: [][]string{{"--version"}},
	},
	"ferry": {
		argv:    func(bin, url, out string) []string { return []string{bin, "get", "-q", url, "-o", out} },
		left:    func(out string) []string { return []string{out + ".part", out + ".ferry"} },
		version: [][]string{{"version"}, {"--version"}},
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
	"aria2c-x4": {
		bin: "aria2c",
		argv: func(bin, url, out string) []string {
			return []string{bin, "--no-conf", "-q", "-x4", "-s4", "-k1M", "--file-allocation=none",
				"--allow-overwrite=true", "--auto-file-renaming=false",
				"-d", filepath.Dir(out), "-o", filepath.Base(out), url}
		},
		left:    func(out string) []string { return []string{out + ".aria2"} },
		version: [][]string{{"--version"}},
	},
}

func toolNames() []string {
	var names []string
	for n := range toolSpecs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookupTool(name, ferryBin string) (Tool, error) {
	spec, ok := toolSpecs[name]
	if !ok {
		return Tool{}, fmt.Errorf("unknown tool %q (have: %s)", name, strings.Join(toolNames(), ", "))
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
		Bin:  bin,
		Argv: func(url, out string) []string { return spec.argv(bin, url, out) },
		Leftovers: func(out string) []string {
			if spec.left == nil {
				return nil
			}
			return spec.left(out)
		},
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
