//go:build interop

package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/download"
)

const (
	// killResumeSize is big enough that a transfer through nginx's
	// rate-limited location lasts several seconds.
	killResumeSize = 256 * MiB
	// killResumeRate is nginx's limit_rate (bytes/s per connection).
	killResumeRate = "20m"
	// resumeWindow is how much data, per connection, a restart may fetch
	// again: what was written to the .part after the last checkpoint of the
	// control file ("at most one in-flight window per connection").
	resumeWindow = 8 * MiB
	// peakRSSLimit is the memory bar for a download of any size.
	peakRSSLimit = 40 * MiB
)

// partProgress is how many bytes of a .part file are really on disk. A
// download that preallocates its .part (a sparse file of the final size)
// has a large size but few blocks; one that appends has size ≈ blocks.
func partProgress(fi os.FileInfo) int64 {
	size := fi.Size()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if alloc := st.Blocks * 512; alloc < size {
			return alloc
		}
	}
	return size
}

// statProgress is how many bytes of the download to the .part file at path
// are in place. A segmented download preallocates the .part (fallocate:
// all its blocks exist from the start), so its progress is what the
// control file's map of missing ranges says was checkpointed; before there
// is a map, a .part of full length holds nothing yet.
func statProgress(path string) (int64, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	if b, err := os.ReadFile(download.ControlPath(strings.TrimSuffix(path, ".part"))); err == nil {
		var c download.State
		if json.Unmarshal(b, &c) == nil {
			if c.Missing != nil {
				return checkpointed(c), true
			}
			if c.Size > 0 && fi.Size() >= c.Size {
				return 0, true
			}
		}
	}
	return partProgress(fi), true
}

// killAtProgress starts `ferry args...`, waits until part holds at least
// target bytes, kills ferry with SIGKILL and returns how many bytes the
// .part held after it died.
func killAtProgress(t *testing.T, args []string, part string, target int64) int64 {
	t.Helper()
	n, _ := signalAtProgress(t, args, part, target, syscall.SIGKILL)
	return n
}

// signalAtProgress starts `ferry args...`, waits until part holds at least
// target bytes, sends sig and waits for ferry to end. It returns how many
// bytes the .part held then, and ferry's exit code (-1 for death by signal).
func signalAtProgress(t *testing.T, args []string, part string, target int64, sig syscall.Signal) (int64, int) {
	t.Helper()
	cmd := exec.Command(ferryBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ferry: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	deadline := time.Now().Add(2 * time.Minute)
	var seen int64
	for {
		select {
		case err := <-done:
			t.Fatalf("ferry %s ended (%v) before %s reached %d bytes (last seen %d); "+
				"the kill point was never reached\nstdout:\n%s\nstderr:\n%s",
				strings.Join(args, " "), err, filepath.Base(part), target, seen,
				tail(stdout.String(), 2000), tail(stderr.String(), 2000))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("ferry %s: %s still at %d bytes after 2m (target %d)\nstderr:\n%s",
				strings.Join(args, " "), filepath.Base(part), seen, target, tail(stderr.String(), 2000))
		}
		if n, ok := statProgress(part); ok {
			seen = n
			if n >= target {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to ferry: %v", sig, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("ferry did not end within 10s of %v\nstderr:\n%s", sig, tail(stderr.String(), 2000))
	}
	n, ok := statProgress(part)
	if !ok {
		t.Fatalf("after kill -9 there is no %s", part)
	}
	if _, err := os.Stat(strings.TrimSuffix(part, ".part") + ".ferry"); err != nil {
		t.Logf("note: no control file next to the .part after %v: %v", sig, err)
	}
	if sig != syscall.SIGKILL {
		t.Logf("ferry after %v: exit %d\nstderr:\n%s", sig, cmd.ProcessState.ExitCode(), tail(stderr.String(), 1000))
	}
	return n, cmd.ProcessState.ExitCode()
}

// checkResumed checks the result of a `ferry get --json` run that followed
// a kill at killedAt bytes, and logs how much was fetched again.
func checkResumed(t *testing.T, res cmdResult, out string, size int64, sum string, killedAt int64) {
	t.Helper()
	if res.exitCode != 0 {
		t.Fatalf("resume run failed: %s", res)
	}
	g := parseGetJSON(t, res)
	assertSameFile(t, out, size, sum)
	if g.SHA256 != sum {
		t.Errorf("--json sha256 = %q, want %s", g.SHA256, sum)
	}
	if g.Size != size {
		t.Errorf("--json size = %d, want %d", g.Size, size)
	}
	conns := int64(max(1, g.Connections))
	allowed := resumeWindow * conns
	refetched := killedAt - g.ResumedFrom
	t.Logf("killed at %d bytes on disk (%.1f%%); resumed_from %d; re-fetched %d bytes (%.2f MiB, allowance %d MiB = %d conn x %d MiB); size_download %d; connections %d; %s",
		killedAt, 100*float64(killedAt)/float64(size), g.ResumedFrom, refetched,
		float64(refetched)/MiB, allowed/MiB, conns, resumeWindow/MiB, g.SizeDownload, g.Connections,
		res.elapsed.Round(time.Millisecond))
	if g.ResumedFrom < killedAt-allowed {
		t.Errorf("resumed_from %d < %d (bytes on disk at the kill) - %d (allowance): the restart threw away data it had",
			g.ResumedFrom, killedAt, allowed)
	}
	if g.ResumedFrom > size {
		t.Errorf("resumed_from %d > size %d", g.ResumedFrom, size)
	}
	if want := size - g.ResumedFrom; g.SizeDownload > want+allowed || g.SizeDownload < want {
		t.Errorf("size_download %d, but size - resumed_from = %d: the two do not agree", g.SizeDownload, want)
	}
	for _, leftover := range []string{out + ".part", out + ".ferry"} {
		if _, err := os.Stat(leftover); err == nil {
			t.Errorf("%s still exists after a successful run", filepath.Base(leftover))
		}
	}
}

// TestGetFromNginxKillResume kills `ferry get -x 1` with SIGKILL at random
// moments of a download from nginx and checks that the same command run
// again continues from the .part and produces the right bytes.
//
// It pins the single stream (-x 1): its .part grows by appending, so the
// kill points (bytes on disk) are exact, and one open-ended request is
// really held to nginx's limit_rate. Segmented downloads (the default for
// big files) are killed and resumed in TestSegmentedKillResume.
func TestGetFromNginxKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("long test: skipped with -short")
	}
	src, sum := fixture(t, "kill-resume.bin", killResumeSize)
	ng := startNginx(t, nginxOptions{limitRate: killResumeRate})
	url := ng.SlowURL + "/" + filepath.Base(src)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	t.Logf("kill points seed %d; source %s (%d MiB, limit_rate %s per connection)", seed, url, killResumeSize/MiB, killResumeRate)

	for i := 1; i <= 3; i++ {
		frac := 0.05 + 0.8*rng.Float64()
		t.Run(fmt.Sprintf("kill%d", i), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.bin")
			args := []string{"get", "-x", "1", url, "-o", out}
			killedAt := killAtProgress(t, args, out+".part", int64(frac*killResumeSize))
			before := len(ng.AccessLog())
			res := runCmd(t, 3*time.Minute, ferryBin, append(args, "--json")...)
			checkResumed(t, res, out, killResumeSize, sum, killedAt)
			if lines := ng.AccessLog(); len(lines) > before {
				t.Logf("nginx saw on resume: %s", strings.Join(lines[before:], " | "))
			}
		})
	}

	// The same transfer killed three times: each restart must continue from
	// the previous one's .part, not from the first one's.
	t.Run("three_kills_one_transfer", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.bin")
		args := []string{"get", "-x", "1", url, "-o", out}
		points := []float64{rng.Float64(), rng.Float64(), rng.Float64()}
		var killedAt int64
		for k, p := range points {
			lo := float64(killedAt)/killResumeSize + 0.05
			target := int64((lo + (0.9-lo)*p/float64(len(points)-k)) * killResumeSize)
			runArgs := args
			if k > 0 {
				runArgs = append(args[:len(args):len(args)], "--json")
			}
			n := killAtProgress(t, runArgs, out+".part", target)
			if n < killedAt-resumeWindow {
				t.Errorf("kill %d: .part holds %d bytes, fewer than the %d it held at the previous kill", k+1, n, killedAt)
			}
			t.Logf("kill %d at %d bytes (%.1f%%)", k+1, n, 100*float64(n)/killResumeSize)
			killedAt = n
		}
		res := runCmd(t, 3*time.Minute, ferryBin, append(args, "--json")...)
		checkResumed(t, res, out, killResumeSize, sum, killedAt)
	})
}

// TestGetPeakRSS downloads 1 GiB from nginx on loopback and checks that
// ferry's peak resident set size stays under the memory bar.
func TestGetPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("long test: skipped with -short")
	}
	const size = 1 * GiB
	src, sum := fixture(t, "rss-1g.bin", size)
	ng := startNginx(t, nginxOptions{})
	out := filepath.Join(t.TempDir(), "out.bin")
	res := runCmd(t, 5*time.Minute, ferryBin, "get", ng.URL+"/"+filepath.Base(src), "-o", out, "--json", "-q")
	if res.exitCode != 0 {
		t.Fatalf("ferry get failed: %s", res)
	}
	g := parseGetJSON(t, res)
	assertSameFile(t, out, size, sum)
	if g.SHA256 != sum {
		t.Errorf("--json sha256 = %q, want %s", g.SHA256, sum)
	}
	rss := res.maxRSS()
	t.Logf("1 GiB in %v (%.0f MiB/s wall), connections %d, peak RSS %.1f MiB (limit %d MiB)",
		res.elapsed.Round(time.Millisecond), float64(size)/MiB/res.elapsed.Seconds(),
		g.Connections, float64(rss)/MiB, peakRSSLimit/MiB)
	if rss == 0 {
		t.Fatalf("no rusage for the ferry process")
	}
	if rss >= peakRSSLimit {
		t.Errorf("peak RSS %.1f MiB >= %d MiB for a 1 GiB download", float64(rss)/MiB, peakRSSLimit/MiB)
	}
}

// TestGetInterruptedResume interrupts `ferry get -x 1` with SIGINT (Ctrl-C)
// mid-download from nginx: it must exit 130 and leave resumable state, and
// the same command run again must finish the file. It pins the single
// stream for the reasons given at TestGetFromNginxKillResume; segmented
// downloads are interrupted in TestSegmentedInterruptResume.
func TestGetInterruptedResume(t *testing.T) {
	const size = 96 * MiB
	src, sum := fixture(t, "interrupt.bin", size)
	ng := startNginx(t, nginxOptions{limitRate: killResumeRate})
	out := filepath.Join(t.TempDir(), "out.bin")
	args := []string{"get", "-x", "1", ng.SlowURL + "/" + filepath.Base(src), "-o", out}

	target := int64(float64(size) * (0.2 + 0.5*rand.Float64()))
	n, code := signalAtProgress(t, args, out+".part", target, syscall.SIGINT)
	if code != 130 {
		t.Errorf("exit code after SIGINT = %d, want 130 (interrupted)", code)
	}
	for _, f := range []string{out + ".part", out + ".ferry"} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after SIGINT: %v; want resumable state left behind", err)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("after SIGINT the final name %s exists", filepath.Base(out))
	}
	res := runCmd(t, 2*time.Minute, ferryBin, append(args, "--json")...)
	checkResumed(t, res, out, size, sum, n)
}

// TestGetChecksumMismatch asks for a sha-256 the file from nginx does not
// have: ferry must exit 3 and never create the file under its final name.
func TestGetChecksumMismatch(t *testing.T) {
	const size = 8 * MiB
	src, sum := fixture(t, "checksum.bin", size)
	ng := startNginx(t, nginxOptions{})
	out := filepath.Join(t.TempDir(), "out.bin")
	url := ng.URL + "/" + filepath.Base(src)
	wrong := strings.Repeat("0", 64)

	res := runCmd(t, time.Minute, ferryBin, "get", url, "-o", out, "-q", "--json", "--checksum", "sha-256="+wrong)
	if res.exitCode != 3 {
		t.Errorf("exit code %d with a wrong --checksum, want 3 (integrity): %s", res.exitCode, res)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s exists under its final name after a failed integrity check", filepath.Base(out))
	}
	if g := parseGetJSON(t, res); g.Error == nil {
		t.Errorf("--json after a failed integrity check has no error field: %s", res.stdout)
	}

	res = runCmd(t, time.Minute, ferryBin, "get", url, "-o", out, "-q", "--json", "--checksum", "sha-256="+sum)
	if res.exitCode != 0 {
		t.Fatalf("ferry get with the right --checksum failed: %s", res)
	}
	assertSameFile(t, out, size, sum)
}
