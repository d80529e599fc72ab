//go:build interop

package interop

import (
	"context"
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

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/peer"
)

// serveAt runs `ferry serve --uploads DIR` on addr until killed.
func serveAt(t *testing.T, uploads, addr string) (kill func()) {
	kill, _ = serveAtPID(t, uploads, addr)
	return kill
}

// serveAtPID is serveAt that also returns the server's process ID.
func serveAtPID(t *testing.T, uploads, addr string) (kill func(), pid int) {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "serve-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ferryBin, "serve", "-q", "--root", t.TempDir(), "--uploads", uploads, "--addr", addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := peer.WaitHealthy(ctx, "http://"+addr+"/healthz"); err != nil {
		t.Fatalf("ferry serve on %s: %v", addr, err)
	}
	kill = func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	t.Cleanup(kill)
	return kill, cmd.Process.Pid
}

// peakRSS reads a live process's high-water resident set (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb * KiB
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

// Memory stays flat in file size on both sides of a 1 GiB upload.
func TestPutPeakRSS(t *testing.T) {
	const size = 1 << 30
	src, sum := fixture(t, "put-rss.bin", size)
	port, err := peer.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	_, pid := serveAtPID(t, t.TempDir(), addr)
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	for _, args := range [][]string{{"-x", "1"}, {"-x", "4"}, {"--protocol", "multipart"}} {
		target := "http://" + addr + "/files/"
		if args[0] == "--protocol" {
			target = "http://" + addr + "/upload"
		}
		res := runCmd(t, 5*time.Minute, ferryBin, append([]string{"put", src, target, "-q", "--json"}, args...)...)
		if res.exitCode != 0 {
			t.Fatalf("ferry put %v: %s", args, res)
		}
		r := parsePutJSON(t, res)
		if r.SHA256 != sum {
			t.Fatalf("ferry put %v: sha %s, want %s", args, r.SHA256, sum)
		}
		t.Logf("ferry put %v: peak RSS %.1f MiB in %v", args, float64(res.maxRSS())/MiB, res.elapsed.Round(time.Millisecond))
		if res.maxRSS() > 40*MiB {
			t.Errorf("ferry put %v: peak RSS %.1f MiB, want at most 40 MiB", args, float64(res.maxRSS())/MiB)
		}
	}
	srv := peakRSS(t, pid)
	t.Logf("ferry serve: peak RSS %.1f MiB after three 1 GiB uploads", float64(srv)/MiB)
	if srv > 40*MiB {
		t.Errorf("ferry serve peak RSS %.1f MiB, want at most 40 MiB", float64(srv)/MiB)
	}
}

// kill -9 of `ferry put -x 4` and of `ferry serve` at random moments of a
// 1 GiB upload: each rerun continues, the stored file is byte-identical,
// and the bytes sent more than once are reported.
func TestPutKillResumeFerryServe(t *testing.T) {
	const size = 1 << 30
	src, sum := fixture(t, "put-serve-kill.bin", size)
	uploads := t.TempDir()
	port, err := peer.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	killServe := serveAt(t, uploads, addr)
	proxy := ferrytest.NewProxy(t, addr)
	state := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 4))
	t.Logf("kill points seed %d", seed)

	put := func(ctx context.Context, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, ferryBin, append([]string{"put", src, proxy.URL + "/files/", "-x", "4"}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
		return cmd
	}
	pause := func() time.Duration { return time.Duration(400+rng.IntN(1600)) * time.Millisecond }

	// Three kills of the client, and two of the server while a client runs.
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := put(ctx, "-q", "--limit-rate", "128M")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pause())
		if i%2 == 1 {
			killServe()
			t.Logf("kill %d: ferry serve (client keeps retrying)", i+1)
			time.Sleep(300 * time.Millisecond)
			killServe = serveAt(t, uploads, addr)
			time.Sleep(pause())
		}
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
		t.Logf("kill %d: ferry put; %d MiB sent so far", i+1, proxy.Sent()>>20)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := put(ctx, "-q", "--json").Output()
	if err != nil {
		t.Fatalf("final ferry put: %v\n%s", err, out)
	}
	var r putResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.SHA256 != sum || r.Error != nil {
		t.Fatalf("final run: %s", out)
	}
	resent := proxy.Sent() - size
	t.Logf("final run resumed from %d and sent %d; over all runs the client sent %d bytes for a %d-byte file: %d (%.1f%%) more, headers included",
		r.ResumedFrom, r.SizeUpload, proxy.Sent(), size, resent, 100*float64(resent)/size)
	// The stored upload is byte-identical: fetch it back.
	back := filepath.Join(t.TempDir(), "back.bin")
	res := runCmd(t, 2*time.Minute, "curl", "-sf", "-o", back, r.Location)
	if res.exitCode != 0 {
		t.Fatalf("fetching the upload back: %s", res)
	}
	assertSameFile(t, back, size, sum)
}
