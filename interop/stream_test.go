//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/peer"
)

// speech returns 16-bit mono PCM of a sentence spoken by espeak-ng, and its
// sample rate.
func speech(t *testing.T, text string) (pcm []byte, rate int) {
	t.Helper()
	bin := needPeer(t, "espeak-ng")
	path := filepath.Join(t.TempDir(), "speech.wav")
	if out, err := exec.Command(bin, "-w", path, text).CombinedOutput(); err != nil {
		t.Fatalf("espeak-ng: %v: %s", err, out)
	}
	wav, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pcm, rate, err = wavPCM(wav)
	if err != nil {
		t.Fatalf("espeak-ng's WAV: %v", err)
	}
	return pcm, rate
}

// wavPCM finds the samples of a 16-bit mono PCM WAV.
func wavPCM(wav []byte) ([]byte, int, error) {
	if len(wav) < 12 || string(wav[:4]) != "RIFF" || string(wav[8:12]) != "WAVE" {
		return nil, 0, io.ErrUnexpectedEOF
	}
	rate := 0
	for p := wav[12:]; len(p) >= 8; {
		id, size := string(p[:4]), int(binary.LittleEndian.Uint32(p[4:8]))
		p = p[8:]
		switch id {
		case "fmt ":
			rate = int(binary.LittleEndian.Uint32(p[4:8]))
		case "data":
			return p[:min(size, len(p))], rate, nil
		}
		p = p[min(len(p), size+size%2):]
	}
	return nil, 0, io.ErrUnexpectedEOF
}

// recording lays speech and a second of silence end to end until it lasts
// secs, as a WAV whose header says nothing of its length, the way a live
// recorder writes it.
func recording(speech []byte, rate int, secs float64) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF\xff\xff\xff\xffWAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(rate * 2), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data\xff\xff\xff\xff")
	want := int(secs*float64(rate)) * 2
	silence := make([]byte, rate*2)
	for n := 0; n < want; {
		for _, part := range [][]byte{speech, silence} {
			k := min(len(part), want-n)
			b.Write(part[:k])
			n += k
		}
	}
	return b.Bytes()
}

// streamReply is a reply line of `ferry stream --json`, with when it came.
type streamReply struct {
	at   time.Duration
	line string
	Seq  int64   `json:"seq"`
	Type string  `json:"type"`
	Dur  float64 `json:"duration"`
	SHA  string  `json:"sha256"`
	Size int64   `json:"size_upload"`
}

// paced runs `ferry stream args...` with wav written to its stdin at real
// time, in 20 ms frames, and collects its stdout lines as they arrive.
// between, if set, runs at each second of the input (the second passed).
func paced(t *testing.T, wav []byte, rate int, between func(sec int), args ...string) (replies []streamReply, inputEnd time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, append([]string{"stream", "--json", "-q"}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var mu sync.Mutex
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			r := streamReply{at: time.Since(start), line: sc.Text()}
			json.Unmarshal(sc.Bytes(), &r)
			mu.Lock()
			replies = append(replies, r)
			mu.Unlock()
		}
	}()
	frame := rate * 2 / 50 // 20 ms
	tick := time.NewTicker(20 * time.Millisecond)
	header := 44
	stdin.Write(wav[:header])
	sec := 0
	for p := wav[header:]; len(p) > 0; p = p[min(len(p), frame):] {
		<-tick.C
		if _, err := stdin.Write(p[:min(len(p), frame)]); err != nil {
			t.Fatalf("writing to ferry stream: %v (stderr: %s)", err, stderr.String())
		}
		if s := int(time.Since(start) / time.Second); s > sec && between != nil {
			sec = s
			between(sec)
		}
	}
	tick.Stop()
	inputEnd = time.Since(start)
	stdin.Close()
	err = cmd.Wait()
	<-read
	if err != nil {
		t.Fatalf("ferry stream: %v\nstderr: %s", err, stderr.String())
	}
	return replies, inputEnd
}

func startStreamServe(t *testing.T, useTLS bool) (url, uploads string) {
	t.Helper()
	uploads = t.TempDir()
	s, err := peer.StartFerryServe(context.Background(), peer.FerryServeConfig{Bin: ferryBin, Root: t.TempDir(), Uploads: uploads, TLS: useTLS})
	if err != nil {
		t.Fatalf("ferry serve did not start: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ferry serve log:\n%s", tail(s.Logs(), 4000))
		}
		stopPeer(t, s)
	})
	return s.URL, uploads
}

// A recording made by espeak-ng, sent at real-time pace: the first reply
// (the format, then the level of the first window) arrives long before the
// input ends, voice is found, and the stored stream is the recording; over
// HTTP/1.1 (chunked, full duplex) and HTTP/2 (TLS).
func TestStreamSpeechRealtime(t *testing.T) {
	pcm, rate := speech(t, "Ferry streams this recording while it is being recorded, and the server answers while it listens.")
	wav := recording(pcm, rate, 10)
	sum := sha256.Sum256(wav)
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "http1", true: "http2-tls"}[useTLS]
		t.Run(name, func(t *testing.T) {
			url, uploads := startStreamServe(t, useTLS)
			args := []string{url + "/stream/speech.wav"}
			if useTLS {
				args = append(args, "-k")
			}
			replies, inputEnd := paced(t, wav, rate, nil, args...)
			if len(replies) == 0 {
				t.Fatal("no replies")
			}
			first := replies[0]
			t.Logf("first reply after %v (%s); input ended after %v; %d replies", first.at.Round(time.Millisecond), first.line, inputEnd.Round(time.Millisecond), len(replies))
			if first.at > inputEnd/2 {
				t.Errorf("first reply after %v: not while streaming (input ended after %v)", first.at, inputEnd)
			}
			var voices, levels int
			var summary, done, result streamReply
			for _, r := range replies {
				switch {
				case r.Type == "voice":
					voices++
				case r.Type == "level":
					levels++
				case r.Type == "summary":
					summary = r
				case r.Type == "done":
					done = r
				case r.Type == "" && r.Size > 0:
					result = r
				}
			}
			if voices == 0 || levels < 90 {
				t.Errorf("%d voice segments and %d levels for 10 s of speech", voices, levels)
			}
			if summary.Dur < 9.9 || summary.Dur > 10.1 {
				t.Errorf("summary %s: want a 10 s duration", summary.line)
			}
			if done.SHA != hex.EncodeToString(sum[:]) || result.SHA != done.SHA {
				t.Errorf("done %s, result %s; want sha-256 %x", done.line, result.line, sum)
			}
			if !strings.Contains(result.line, `"verified":["server sha-256"]`) {
				t.Errorf("result not verified: %s", result.line)
			}
			if want := map[bool]string{false: `"http_version":"1.1"`, true: `"http_version":"2"`}[useTLS]; !strings.Contains(result.line, want) {
				t.Errorf("result %s: want %s", result.line, want)
			}
			stored, err := os.ReadFile(filepath.Join(uploads, "streams", "speech.wav"))
			if err != nil || !bytes.Equal(stored, wav) {
				t.Errorf("stored stream: %d bytes, %v; want the recording", len(stored), err)
			}
		})
	}
}

// A 60 s recording sent resumably at real-time pace through a proxy that
// cuts the connection three times: the stored stream is the recording byte
// for byte, the replies go on after every cut, numbered without gaps or
// repeats.
func TestStreamSurvivesThreeCuts(t *testing.T) {
	pcm, rate := speech(t, "A dropped connection must not lose the recording.")
	wav := recording(pcm, rate, 60)
	url, uploads := startStreamServe(t, false)
	proxy := ferrytest.NewProxy(t, strings.TrimPrefix(url, "http://"))
	var cuts []time.Duration
	start := time.Now()
	replies, _ := paced(t, wav, rate, func(sec int) {
		if sec == 15 || sec == 30 || sec == 45 {
			if n := proxy.Cut(); n > 0 {
				cuts = append(cuts, time.Since(start))
			}
		}
	}, proxy.URL+"/stream/long.wav", "--resumable")
	if len(cuts) != 3 {
		t.Fatalf("%d cuts landed on an open connection, want 3", len(cuts))
	}
	var last int64
	for _, r := range replies {
		if r.Seq == 0 {
			continue // the final result line
		}
		if r.Seq != last+1 {
			t.Fatalf("reply seq %d after %d: gaps or repeats (%s)", r.Seq, last, r.line)
		}
		last = r.Seq
	}
	for i, c := range cuts {
		after := 0
		for _, r := range replies {
			if r.Seq > 0 && r.at > c+time.Second {
				after++
			}
		}
		if after == 0 {
			t.Errorf("no replies more than a second after cut %d (at %v)", i+1, c)
		}
	}
	stored, err := os.ReadFile(filepath.Join(uploads, "streams", "long.wav"))
	if err != nil || !bytes.Equal(stored, wav) {
		t.Fatalf("stored stream: %d bytes, %v; want the %d-byte recording", len(stored), err, len(wav))
	}
	accepted, cut := proxy.Conns()
	t.Logf("%d replies; cuts at %v; %d connections, %d cut", len(replies), cuts, accepted, cut)
}
