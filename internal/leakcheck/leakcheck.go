// Package leakcheck fails a test binary whose goroutines outlive its tests:
// servers, connections, janitors or transfers a test started and did not
// stop. A package's TestMain hands it the markers (parts of function names
// in a goroutine's stack) that make a goroutine its own.
package leakcheck

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// wait is how long goroutines get to end after the last test: stopping
// ones are still unwinding when m.Run returns.
const wait = 5 * time.Second

// Main runs the tests and exits: non-zero if they failed, or if after they
// passed a goroutine whose stack contains one of markers is still running
// once wait has passed.
func Main(m *testing.M, markers ...string) {
	code := m.Run()
	if code == 0 && Leaked(os.Stderr, wait, markers...) {
		code = 1
	}
	os.Exit(code)
}

// Leaked reports whether goroutines matching markers are still running
// after up to wait, and writes their stacks to w if so.
func Leaked(w io.Writer, wait time.Duration, markers ...string) bool {
	deadline := time.Now().Add(wait)
	for {
		gs := matching(markers)
		if len(gs) == 0 {
			return false
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(w, "%d goroutines left running:\n\n%s\n", len(gs), strings.Join(gs, "\n\n"))
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// matching returns the stacks of the goroutines, other than the caller's,
// that contain one of markers.
func matching(markers []string) []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var gs []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "leakcheck.matching") {
			continue
		}
		for _, m := range markers {
			if strings.Contains(g, m) {
				gs = append(gs, g)
				break
			}
		}
	}
	return gs
}
