package audio_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/server/stream/audio"
)

// wav describes a WAV stream to build; zero fields take usual values.
type wav struct {
	rate, channels int    // default 16000, 1; negative writes 0
	tag            uint16 // format tag, default 1 (PCM)
	bits           int    // default 16
	extensible     bool   // WAVE_FORMAT_EXTENSIBLE, with subformat tag
	fmtSize        int    // default 16, or 40 when extensible
	rf64           bool   // RF64 with a ds64 chunk giving the real data size
	fakeSize       bool   // write size in the RIFF and data headers
	size           uint32
	before, after  []chunk // chunks around the data chunk
}

type chunk struct {
	id   string
	body []byte
}

func appendChunk(b []byte, id string, size uint32, body []byte) []byte {
	b = append(b, id...)
	b = binary.LittleEndian.AppendUint32(b, size)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0) // the pad byte
	}
	return b
}

// bytes builds the stream, data being the bytes of the data chunk.
func (w wav) bytes(data []byte) []byte {
	if w.rate == 0 {
		w.rate = 16000
	}
	if w.channels == 0 {
		w.channels = 1
	}
	if w.tag == 0 {
		w.tag = 1
	}
	if w.bits == 0 {
		w.bits = 16
	}
	if w.fmtSize == 0 {
		w.fmtSize = 16
		if w.extensible {
			w.fmtSize = 40
		}
	}
	f := make([]byte, w.fmtSize)
	tag := w.tag
	if w.extensible {
		tag = 0xFFFE
	}
	channels, rate := max(w.channels, 0), max(w.rate, 0)
	block := channels * w.bits / 8
	binary.LittleEndian.PutUint16(f[0:], tag)
	binary.LittleEndian.PutUint16(f[2:], uint16(channels))
	binary.LittleEndian.PutUint32(f[4:], uint32(rate))
	binary.LittleEndian.PutUint32(f[8:], uint32(rate*block))
	binary.LittleEndian.PutUint16(f[12:], uint16(block))
	binary.LittleEndian.PutUint16(f[14:], uint16(w.bits))
	if w.extensible && len(f) >= 40 {
		binary.LittleEndian.PutUint16(f[16:], 22)
		binary.LittleEndian.PutUint16(f[18:], uint16(w.bits))
		binary.LittleEndian.PutUint32(f[20:], 0x4) // front centre
		binary.LittleEndian.PutUint16(f[24:], w.tag)
		copy(f[26:], []byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71})
	}

	var body []byte
	if w.rf64 {
		ds := make([]byte, 28)
		binary.LittleEndian.PutUint64(ds[8:], uint64(len(data)))
		body = appendChunk(body, "ds64", 28, ds)
	}
	body = appendChunk(body, "fmt ", uint32(len(f)), f)
	for _, c := range w.before {
		body = appendChunk(body, c.id, uint32(len(c.body)), c.body)
	}
	dataSize := uint32(len(data))
	if w.fakeSize {
		dataSize = w.size
	}
	if w.rf64 {
		dataSize = 0xFFFFFFFF
	}
	body = appendChunk(body, "data", dataSize, data)
	for _, c := range w.after {
		body = appendChunk(body, c.id, uint32(len(c.body)), c.body)
	}
	riffSize := uint32(4 + len(body))
	if w.fakeSize {
		riffSize = w.size
	}
	magic := "RIFF"
	if w.rf64 {
		magic, riffSize = "RF64", 0xFFFFFFFF
	}
	b := append([]byte(magic), binary.LittleEndian.AppendUint32(nil, riffSize)...)
	b = append(b, "WAVE"...)
	return append(b, body...)
}

// pcm encodes samples as little-endian 16-bit.
func pcm(samples []int16) []byte {
	b := make([]byte, 0, 2*len(samples))
	for _, s := range samples {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	return b
}

func toSample(x float64) int16 {
	return int16(max(-32768, min(32767, math.Round(x*32768))))
}

// tone is secs of a sine of frequency hz and peak amp (relative to full
// scale) at rate, on one channel.
func tone(rate int, secs, hz, amp float64) []int16 {
	s := make([]int16, int(math.Round(secs*float64(rate))))
	for i := range s {
		s[i] = toSample(amp * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
	}
	return s
}

func silence(rate int, secs float64) []int16 {
	return make([]int16, int(math.Round(secs*float64(rate))))
}

// noise is secs of Gaussian noise of level db dBFS, the same for a seed.
func noise(rate int, secs, db float64, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 1))
	sigma := math.Pow(10, db/20)
	s := make([]int16, int(math.Round(secs*float64(rate))))
	for i := range s {
		s[i] = toSample(sigma * rng.NormFloat64())
	}
	return s
}

// mix adds b to a, sample by sample.
func mix(a, b []int16) []int16 {
	out := make([]int16, len(a))
	for i := range a {
		out[i] = int16(max(-32768, min(32767, int(a[i])+int(b[i]))))
	}
	return out
}

func concat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// interleave makes frames of one sample from each channel.
func interleave(chans ...[]int16) []int16 {
	out := make([]int16, 0, len(chans)*len(chans[0]))
	for i := range chans[0] {
		for _, c := range chans {
			out = append(out, c[i])
		}
	}
	return out
}

// replies holds what a processor emitted.
type replies []any

// run processes r with p and returns its replies and error.
func run(p *audio.Processor, r io.Reader) (replies, error) {
	var (
		mu  sync.Mutex
		out replies
	)
	err := p.Process(context.Background(), r, func(v any) {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, v)
	})
	return out, err
}

// mustRun processes the stream b with default options.
func mustRun(t *testing.T, p *audio.Processor, b []byte) replies {
	t.Helper()
	rs, err := run(p, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	return rs
}

// lines is the NDJSON the replies become.
func (rs replies) lines(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range rs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func (rs replies) levels() []audio.Level {
	var out []audio.Level
	for _, r := range rs {
		if l, ok := r.(audio.Level); ok {
			out = append(out, l)
		}
	}
	return out
}

func (rs replies) format(t *testing.T) audio.Format {
	t.Helper()
	if len(rs) == 0 {
		t.Fatal("no replies")
	}
	f, ok := rs[0].(audio.Format)
	if !ok {
		t.Fatalf("first reply %#v, want a Format", rs[0])
	}
	return f
}

func (rs replies) summary(t *testing.T) audio.Summary {
	t.Helper()
	if len(rs) == 0 {
		t.Fatal("no replies")
	}
	s, ok := rs[len(rs)-1].(audio.Summary)
	if !ok {
		t.Fatalf("last reply %#v, want a Summary", rs[len(rs)-1])
	}
	return s
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
