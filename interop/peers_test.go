//go:build interop

package interop

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const peerFileSize = 48 * MiB

// randomPrefix picks how much of a file an interrupted download left.
func randomPrefix(t *testing.T, size int64) int64 {
	n := MiB + rand.Int64N(size-2*MiB)
	t.Logf("resuming after a prefix of %d of %d bytes", n, size)
	return n
}

// TestCurlResumeFromFerryServe resumes a partial file with `curl -C -`
// against `ferry serve` and checks that only the missing bytes moved.
func TestCurlResumeFromFerryServe(t *testing.T) {
	curl := needPeer(t, "curl")
	src, sum := fixture(t, "peer.bin", peerFileSize)
	srv := startFerryServe(t, dataDir, false)
	out := filepath.Join(t.TempDir(), "out.bin")
	prefix := randomPrefix(t, peerFileSize)
	copyPrefix(t, src, out, prefix)

	res := runCmd(t, 2*time.Minute, curl, "-sS", "-f", "-C", "-", "-o", out,
		"-w", "%{http_code} %{size_download}", srv.URL+"/"+filepath.Base(src))
	if res.exitCode != 0 {
		t.Fatalf("curl failed: %s", res)
	}
	var code, moved int64
	if _, err := fmt.Sscanf(strings.TrimSpace(res.stdout), "%d %d", &code, &moved); err != nil {
		t.Fatalf("curl -w output %q: %v", res.stdout, err)
	}
	t.Logf("curl: HTTP %d, size_download %d (size %d - prefix %d = %d)", code, moved, peerFileSize, prefix, peerFileSize-prefix)
	if code != 206 {
		t.Errorf("HTTP status %d, want 206 Partial Content for a resume", code)
	}
	if moved != peerFileSize-prefix {
		t.Errorf("curl moved %d bytes, want %d (size - prefix): not a ranged resume", moved, peerFileSize-prefix)
	}
	assertSameFile(t, out, peerFileSize, sum)
}

// contentRange returns the Content-Range values in wget-style -S output.
var contentRangeRE = regexp.MustCompile(`(?im)^\s*Content-Range:\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$`)

func checkRangedResponse(t *testing.T, who, stderr string, prefix, size int64) {
	t.Helper()
	if !regexp.MustCompile(`(?m)^\s*HTTP/\S+\s+206\b`).MatchString(stderr) {
		t.Errorf("%s: no '206' status in the server response:\n%s", who, tail(stderr, 3000))
	}
	m := contentRangeRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Errorf("%s: no Content-Range in the server response:\n%s", who, tail(stderr, 3000))
		return
	}
	first, _ := strconv.ParseInt(m[1], 10, 64)
	last, _ := strconv.ParseInt(m[2], 10, 64)
	total, _ := strconv.ParseInt(m[3], 10, 64)
	t.Logf("%s: server answered Content-Range: bytes %d-%d/%d (%d bytes moved)", who, first, last, total, last-first+1)
	if first != prefix || last != size-1 || total != size {
		t.Errorf("%s: Content-Range bytes %d-%d/%d, want bytes %d-%d/%d", who, first, last, total, prefix, size-1, size)
	}
}

// TestWgetResumeFromFerryServe resumes a partial file with `wget -c`.
func TestWgetResumeFromFerryServe(t *testing.T) {
	wget := needPeer(t, "wget")
	src, sum := fixture(t, "peer.bin", peerFileSize)
	srv := startFerryServe(t, dataDir, false)
	out := filepath.Join(t.TempDir(), "out.bin")
	prefix := randomPrefix(t, peerFileSize)
	copyPrefix(t, src, out, prefix)

	res := runCmd(t, 2*time.Minute, wget, "-nv", "-S", "--tries=1", "-c", "-O", out, srv.URL+"/"+filepath.Base(src))
	if res.exitCode != 0 {
		t.Fatalf("wget failed: %s", res)
	}
	checkRangedResponse(t, "wget", res.stderr, prefix, peerFileSize)
	assertSameFile(t, out, peerFileSize, sum)
}

// TestWget2ResumeFromFerryServe resumes a partial file with `wget2 -c`.
// wget2 1.99 ignores -c together with -O, so the partial file takes the
// name from the URL in a directory given with -P.
func TestWget2ResumeFromFerryServe(t *testing.T) {
	wget2 := needPeer(t, "wget2")
	src, sum := fixture(t, "peer.bin", peerFileSize)
	srv := startFerryServe(t, dataDir, false)
	dir := t.TempDir()
	out := filepath.Join(dir, filepath.Base(src))
	prefix := randomPrefix(t, peerFileSize)
	copyPrefix(t, src, out, prefix)

	res := runCmd(t, 2*time.Minute, wget2, "--no-config", "-S", "--tries=1", "-c",
		"--no-robots", "--progress=none", "-P", dir, srv.URL+"/"+filepath.Base(src))
	if res.exitCode != 0 {
		t.Fatalf("wget2 failed: %s", res)
	}
	checkRangedResponse(t, "wget2", res.stdout+res.stderr, prefix, peerFileSize)
	assertSameFile(t, out, peerFileSize, sum)
}

// TestAria2FromFerryServe downloads with four parallel ranged connections.
func TestAria2FromFerryServe(t *testing.T) {
	aria2c := needPeer(t, "aria2c")
	const size = 64 * MiB
	src, sum := fixture(t, "aria2.bin", size)
	srv := startFerryServe(t, dataDir, false)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "aria2.log")

	res := runCmd(t, 3*time.Minute, aria2c, "--no-conf", "-x4", "-s4", "-k1M",
		"--file-allocation=none", "--allow-overwrite=true", "--auto-file-renaming=false",
		"--max-tries=1", "--summary-interval=0", "--console-log-level=warn",
		"--log="+logPath, "--log-level=info",
		"-d", dir, "-o", "out.bin", srv.URL+"/"+filepath.Base(src))
	if res.exitCode != 0 {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("aria2c failed: %s\nlog:\n%s", res, tail(string(log), 3000))
	}
	assertSameFile(t, filepath.Join(dir, "out.bin"), size, sum)

	// aria2c logs every request it sends; count the ranged ones.
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ranges := regexp.MustCompile(`(?m)^Range: bytes=(\d+)-`).FindAllStringSubmatch(string(log), -1)
	starts := map[string]bool{}
	for _, m := range ranges {
		starts[m[1]] = true
	}
	t.Logf("aria2c sent %d ranged requests (%d distinct starts) in %v", len(ranges), len(starts), res.elapsed.Round(time.Millisecond))
	if len(starts) < 2 {
		t.Errorf("aria2c made %d distinct ranged requests; expected a split download over several connections", len(starts))
	}
}
