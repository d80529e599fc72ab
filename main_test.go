package ferry_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/leakcheck"
)

// TestMain fails the run if goroutines of ferry's own code outlive the
// tests: a task that never ends or an event pump nobody drains is a leak.
func TestMain(m *testing.M) {
	leakcheck.Main(m, "github.com/ferryhq/ferry.", "github.com/ferryhq/ferry/internal/")
}

// enginePackages move bytes, and only the library uses them.
var enginePackages = []string{"/internal/data", "/internal/download", "/internal/upload", "/internal/hlsdownload", "/internal/stream", "/internal/send"}

// The client library must stay free of the server, the CLI and the test kit,
// so that embedding it pulls in only what a client needs.
func TestClientDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/ferryhq/ferry").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"/server", "/cmd/", "/ferrytest", "/bench", "/interop", "testing"} {
			if strings.HasPrefix(pkg, "github.com/ferryhq/ferry") && strings.Contains(pkg, banned) || pkg == "testing" {
				t.Errorf("the client library depends on %s", pkg)
			}
		}
	}
	// The daemon runs tasks through the library's table of kinds, never
	// an engine of its own.
	out, err = exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "github.com/ferryhq/ferry/daemon").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, engine := range enginePackages {
			if pkg == "github.com/ferryhq/ferry"+engine {
				t.Errorf("the daemon imports the engine %s", pkg)
			}
		}
	}
	// The CLI transfers through the library and manages background tasks
	// through it too (ferry.Daemon): never an engine or the daemon's wire
	// protocol.
	out, err = exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "github.com/ferryhq/ferry/cmd/ferry").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, inner := range append(enginePackages, "/internal/bgapi") {
			if pkg == "github.com/ferryhq/ferry"+inner {
				t.Errorf("the CLI imports %s", pkg)
			}
		}
	}
}
