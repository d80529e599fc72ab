//go:build interop

// Package interop drives the ferry binary against real third-party peers
// (nginx, curl, wget, wget2, aria2c, Apache httpd, tinyproxy, Dante) and
// drives those peers against `ferry serve`. It only builds with the "interop" tag so that
// `go test ./...` stays hermetic:
//
//	go test -count=1 -tags interop -v ./interop/...
//
// A missing peer skips its test with a loud message on a developer machine
// and fails it when CI=true. FERRY_BIN=/path/to/ferry tests a prebuilt
// binary instead of building ./cmd/ferry.
package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/peer"
)

var (
	// ferryBin is the ferry binary under test, built once by TestMain.
	ferryBin string
	// dataDir holds the generated test files, shared by all tests and
	// served by nginx and ferry serve.
	dataDir string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "ferry-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	dataDir = filepath.Join(tmp, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}

	if bin := os.Getenv("FERRY_BIN"); bin != "" {
		ferryBin, err = filepath.Abs(bin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "interop:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "interop: using FERRY_BIN=%s\n", ferryBin)
	} else {
		ferryBin, err = peer.BuildFerry(context.Background(), filepath.Join(tmp, "bin"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "interop: building ferry:", err)
			return 1
		}
	}
	return m.Run()
}

// inCI reports whether missing peers must fail rather than skip.
func inCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// needPeer returns the path of the named peer binary. When it is missing the
// test fails under CI=true and is skipped, loudly, elsewhere.
func needPeer(t testing.TB, name string) string {
	t.Helper()
	p, err := peer.FindBinary(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("interop peer %q not found in PATH (Debian: apt-get install %s)", name, peer.DebianPackage(name))
	if inCI() {
		t.Fatalf("%s; CI=true, so a missing peer is a failure", msg)
	}
	t.Skipf("!!! SKIPPED: %s; this test did NOT run !!!", msg)
	return ""
}
