package main

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersion: ferry version, --version and -V print one line naming the
// binary and the Go version that built it.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-V"}} {
		var out, errw bytes.Buffer
		if code := run(context.Background(), args, nil, &out, &errw); code != exitOK {
			t.Fatalf("ferry %v: exit %d: %s", args, code, errw.String())
		}
		line := strings.TrimSpace(out.String())
		if !strings.HasPrefix(line, "ferry ") || !strings.HasSuffix(line, runtime.Version()) || strings.Contains(line, "\n") {
			t.Errorf("ferry %v printed %q, want one line \"ferry VERSION ... %s\"", args, out.String(), runtime.Version())
		}
	}
}

func TestFormatVersion(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"},
			{Key: "vcs.time", Value: "2026-12-04T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	if got, want := formatVersion(bi), "ferry v1.2.3 0123456789ab+dirty 2026-12-04T10:00:00Z go1.26.8"; got != want {
		t.Errorf("formatVersion = %q, want %q", got, want)
	}
	if got, want := formatVersion(&debug.BuildInfo{GoVersion: "go1.26.8"}), "ferry (devel) go1.26.8"; got != want {
		t.Errorf("formatVersion without settings = %q, want %q", got, want)
	}
}

func TestFormatPseudoVersion(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Version: "v0.0.0-20261204183314-cee597b3512c+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "cee597b3512c0000000000000000000000000000"},
			{Key: "vcs.time", Value: "2026-12-04T18:33:14Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	if got, want := formatVersion(bi), "ferry v0.0.0-20261204183314-cee597b3512c+dirty 2026-12-04T18:33:14Z go1.26.8"; got != want {
		t.Errorf("formatVersion = %q, want %q", got, want)
	}
}
