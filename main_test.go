package ferry_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if goroutines of ferry's own code outlive the
// tests: a task that never ends or an event pump nobody drains is a leak.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaks := ferryGoroutines(5 * time.Second); leaks != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running:\n%s\n", leaks)
			code = 1
		}
	}
	os.Exit(code)
}

func ferryGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaks []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "github.com/ferryhq/ferry.") || strings.Contains(g, "github.com/ferryhq/ferry/internal/") {
				if !strings.Contains(g, "ferryGoroutines") {
					leaks = append(leaks, g)
				}
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			return strings.Join(leaks, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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
}
