package daemon

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// needRoot skips t where the test cannot run as it must (not root, or a
// mount refused), and fails it under CI=true, which runs as root: there a
// skip would hide a test that should have run.
func needRoot(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if v := strings.ToLower(os.Getenv("CI")); v != "" && v != "0" && v != "false" {
		t.Fatalf("%s; CI=true, so this is a failure", msg)
	}
	t.Skip(msg)
}
