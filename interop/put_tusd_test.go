//go:build interop

package interop

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

// tusd is built once from the version pinned in tools/go.mod.
var (
	tusdOnce sync.Once
	tusdBin  string
	tusdErr  error
)

func buildTusd(t *testing.T) string {
	t.Helper()
	tusdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-tusd-")
		if err != nil {
			tusdErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		tusdBin, tusdErr = peer.BuildTusd(ctx, dir)
	})
	if tusdErr != nil {
		t.Fatal(tusdErr)
	}
	// The peer is the one tools/go.mod pins, as the results say.
	if v := peer.TusdVersion(tusdBin); v != "v2.10.0" {
		t.Fatalf("tusd built is %q, want v2.10.0", v)
	}
	return tusdBin
}

// startTusd runs tusd v2.10.0 on a free loopback port with the IETF draft
// enabled next to tus 1.0, storing into a temp dir.
func startTusd(t *testing.T) (endpoint, dir string) {
	t.Helper()
	dir = t.TempDir()
	bin := buildTusd(t) // before the start's minute: the first build may take that long
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := peer.StartTusd(ctx, peer.TusdConfig{Bin: bin, UploadDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tusd log:\n%s", tail(srv.Logs(), 4000))
		}
		srv.Stop()
	})
	return srv.URL + "/files/", dir
}

// putResult is the --json object printed by `ferry put`.
type putResult struct {
	Location    string   `json:"location"`
	Protocol    string   `json:"protocol"`
	Size        int64    `json:"size"`
	SizeUpload  int64    `json:"size_upload"`
	ResumedFrom int64    `json:"resumed_from"`
	SHA256      string   `json:"sha256"`
	Error       *jsonAny `json:"error"`
}

func parsePutJSON(t *testing.T, res cmdResult) putResult {
	t.Helper()
	var r putResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(res.stdout)), &r); err != nil {
		t.Fatalf("ferry put --json output: %v\n%s", err, res)
	}
	return r
}

// stored is the file tusd keeps for an upload URL.
func stored(dir, location string) string {
	return filepath.Join(dir, filepath.Base(location))
}

func TestPutToTusd(t *testing.T) {
	needPeer(t, "go")
	src, sum := fixture(t, "put-tusd.bin", 96<<20)
	t.Setenv("XDG_STATE_HOME", t.TempDir()) // ferry put keeps its state there
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"tus", []string{"--protocol", "tus"}},
		{"tus parallel", []string{"--protocol", "tus", "-x", "4"}},
		{"ietf", []string{"--protocol", "ietf"}},
		{"auto", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint, dir := startTusd(t)
			args := append([]string{"put", src, endpoint, "--json", "-q"}, tc.args...)
			cmd := runCmd(t, 3*time.Minute, ferryBin, args...)
			if cmd.exitCode != 0 {
				t.Fatalf("ferry put failed: %s", cmd)
			}
			r := parsePutJSON(t, cmd)
			if r.SHA256 != sum || r.Size != 96<<20 {
				t.Fatalf("reported sha %s size %d, want %s", r.SHA256, r.Size, sum)
			}
			assertSameFile(t, stored(dir, r.Location), 96<<20, sum)
		})
	}
}

// kill -9 of `ferry put -x 4` at random moments: each rerun continues from
// what tusd holds, and the result is byte-identical.
func TestPutToTusdKillResume(t *testing.T) {
	needPeer(t, "go")
	const size = 256 << 20
	src, sum := fixture(t, "put-kill.bin", size)
	endpoint, dir := startTusd(t)
	state := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 3))
	t.Logf("kill points seed %d", seed)
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, ferryBin, "put", src, endpoint, "-q", "-x", "4", "--limit-rate", "64M")
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
		t.Logf("kill %d done (%s); stderr: %q", i+1, cmd.ProcessState, tail(stderr.String(), 500))
	}
	saved, _ := filepath.Glob(filepath.Join(state, "ferry", "uploads", "*.json"))
	final := exec.Command(ferryBin, "put", src, endpoint, "-q", "-x", "4", "--json")
	final.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
	out, err := final.Output()
	if err != nil {
		t.Fatalf("final ferry put: %v\n%s", err, out)
	}
	var r putResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.ResumedFrom == 0 && len(saved) > 0 {
		t.Errorf("the final run resumed from 0 although the killed runs left a state file")
	}
	if len(saved) == 0 {
		t.Logf("the killed runs left no state file; the final run started afresh")
	}
	t.Logf("final run: resumed from %d, sent %d of %d", r.ResumedFrom, r.SizeUpload, size)
	assertSameFile(t, stored(dir, r.Location), size, sum)
}
