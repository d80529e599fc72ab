//go:build interop

package interop

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGetFromFerryServeTLS downloads over HTTPS from `ferry serve
// --tls-self-signed`, trusting its certificate with --insecure.
func TestGetFromFerryServeTLS(t *testing.T) {
	const size = 32 * MiB
	src, sum := fixture(t, "tls.bin", size)
	srv := startFerryServe(t, dataDir, true)
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("server URL %s is not https", srv.URL)
	}
	out := filepath.Join(t.TempDir(), "out.bin")
	url := srv.URL + "/" + filepath.Base(src)

	// Without --insecure the self-signed certificate must be refused.
	res := runCmd(t, time.Minute, ferryBin, "get", url, "-o", out, "--json", "-q", "--retry", "0")
	if res.exitCode == 0 {
		t.Errorf("ferry get accepted a self-signed certificate without --insecure: %s", res)
	}

	res = runCmd(t, 2*time.Minute, ferryBin, "get", url, "-o", out, "--json", "-q", "--insecure")
	if res.exitCode != 0 {
		t.Fatalf("ferry get --insecure over TLS failed: %s", res)
	}
	g := parseGetJSON(t, res)
	assertSameFile(t, out, size, sum)
	if g.SHA256 != sum {
		t.Errorf("--json sha256 = %q, want %s", g.SHA256, sum)
	}
	t.Logf("TLS: %d bytes over HTTP/%s in %v", g.SizeDownload, g.HTTPVersion, res.elapsed.Round(time.Millisecond))
}
