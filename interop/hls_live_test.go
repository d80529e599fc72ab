//go:build interop

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/hls"
)

// `ferry hls --live-duration 10s` on a live playlist that gains a segment
// every second records a VOD playlist with contiguous media sequence
// numbers, each naming the segment the stream published under it.
func TestHLSLiveRecording(t *testing.T) {
	live := ferrytest.NewLiveHLS(t, time.Second, 6)
	out := filepath.Join(t.TempDir(), "rec")
	res := runCmd(t, time.Minute, ferryBin, "hls", live.URL+"/live.m3u8", "-o", out, "--live-duration", "10s", "--json", "-q")
	if res.exitCode != 0 {
		t.Fatalf("ferry hls: %s", res)
	}
	var report struct {
		Segments int    `json:"segments"`
		Error    string `json:"error"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &report); err != nil || report.Error != "" {
		t.Fatalf("--json %q: %v", res.stdout, err)
	}
	b, err := os.ReadFile(filepath.Join(out, "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := hls.ParseMedia(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("local playlist: %v\n%s", err, b)
	}
	if !m.EndList || m.PlaylistType != "VOD" {
		t.Errorf("not a VOD playlist:\n%s", b)
	}
	// Three segments before the live end, then one a second for 10 s.
	if n := len(m.Segments); n < 11 || n > 15 || n != report.Segments {
		t.Errorf("%d segments recorded (--json: %d), want about 13", n, report.Segments)
	}
	if m.MediaSequence != 3 {
		t.Errorf("recording starts at %d, want 3: three segments from the live end", m.MediaSequence)
	}
	for i, s := range m.Segments {
		got, err := os.ReadFile(filepath.Join(out, s.URI))
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if seq := m.MediaSequence + int64(i); !bytes.Equal(got, ferrytest.Segment(seq)) {
			t.Fatalf("entry %d holds another segment than %d: sequence numbers not contiguous", i, seq)
		}
	}
	t.Logf("recorded %d segments from %d in %v", len(m.Segments), m.MediaSequence, res.elapsed.Round(time.Millisecond))
}

// Ctrl-C ends a live recording with a playable playlist of what it has.
func TestHLSLiveInterrupt(t *testing.T) {
	live := ferrytest.NewLiveHLS(t, time.Second, 4)
	out := filepath.Join(t.TempDir(), "rec")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, "hls", live.URL+"/live.m3u8", "-o", out, "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ferry hls after Ctrl-C: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "ending the recording") {
		t.Errorf("stderr %q: want a note that the recording ends", stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := hls.ParseMedia(bytes.NewReader(b))
	if err != nil || !m.EndList || len(m.Segments) < 3 {
		t.Fatalf("local playlist after Ctrl-C (%v):\n%s", err, b)
	}
	for _, s := range m.Segments {
		if _, err := os.Stat(filepath.Join(out, s.URI)); err != nil {
			t.Fatalf("the playlist names a missing file: %v", err)
		}
	}
}
