package audio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ferryhq/ferry/server/stream/audio"
)

func TestLevels(t *testing.T) {
	const rate = 16000
	half := tone(rate, 1, 1000, 0.5)
	tests := []struct {
		name     string
		channels int
		samples  []int16
		rms      float64
		dbfs     float64
	}{
		{"sine at half scale", 1, half, 0.35355, -9.0},
		{"silence", 1, silence(rate, 1), 0, -120},
		{"sine at -60 dBFS", 1, tone(rate, 1, 1000, math.Sqrt2*math.Pow(10, -60.0/20)), 0.001, -60.0},
		{"square at full scale", 1, func() []int16 {
			s := make([]int16, rate)
			for i := range s {
				s[i] = -32768
			}
			return s
		}(), 1, 0},
		{"stereo, sine left only", 2, interleave(half, silence(rate, 1)), 0.25, -12.0},
		{"stereo, sine on both", 2, interleave(half, half), 0.35355, -9.0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustRun(t, audio.New(audio.Options{}), wav{channels: tt.channels}.bytes(pcm(tt.samples)))
			ls := rs.levels()
			if len(ls) != 10 {
				t.Fatalf("%d levels, want 10", len(ls))
			}
			for i, l := range ls {
				if !near(l.RMS, tt.rms, 0.00002) || l.DBFS != tt.dbfs {
					t.Errorf("level %d: rms %v dbfs %v, want %v %v", i, l.RMS, l.DBFS, tt.rms, tt.dbfs)
				}
				if want := float64(i) / 10; !near(l.T, want, 1e-9) || l.Dur != 0.1 {
					t.Errorf("level %d: t %v dur %v, want %v 0.1", i, l.T, l.Dur, want)
				}
			}
		})
	}
}

func TestWindows(t *testing.T) {
	tests := []struct {
		name   string
		rate   int
		window time.Duration
		secs   float64
		ts     []float64
		durs   []float64
	}{
		{"partial last window", 8000, 0, 0.25, []float64{0, 0.1, 0.2}, []float64{0.1, 0.1, 0.05}},
		{"whole windows", 8000, 0, 0.3, []float64{0, 0.1, 0.2}, []float64{0.1, 0.1, 0.1}},
		{"50ms windows", 44100, 50 * time.Millisecond, 0.12, []float64{0, 0.05, 0.1}, []float64{0.05, 0.05, 0.02}},
		{"less than a window", 16000, time.Second, 0.5, []float64{0}, []float64{0.5}},
		{"no samples", 16000, 0, 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tone(tt.rate, tt.secs, 440, 0.1)
			rs := mustRun(t, audio.New(audio.Options{Window: tt.window}), wav{rate: tt.rate}.bytes(pcm(s)))
			var ts, durs []float64
			for _, l := range rs.levels() {
				ts, durs = append(ts, l.T), append(durs, l.Dur)
			}
			if !slices.Equal(ts, tt.ts) || !slices.Equal(durs, tt.durs) {
				t.Errorf("t %v dur %v, want %v %v", ts, durs, tt.ts, tt.durs)
			}
			sum := rs.summary(t)
			if sum.Samples != int64(len(s)) || sum.Duration != tt.secs {
				t.Errorf("summary %+v, want %d samples, %v s", sum, len(s), tt.secs)
			}
		})
	}
}

// seg is a segment of voice, in seconds.
type seg struct{ start, end float64 }

func TestVoiceActivity(t *testing.T) {
	const rate = 16000
	loud := func(secs float64) []int16 { return tone(rate, secs, 440, 0.5) }
	quiet := func(secs float64) []int16 { return silence(rate, secs) }
	noisy := func(db float64, parts ...[]int16) []int16 {
		s := concat(parts...)
		return mix(s, noise(rate, float64(len(s))/rate, db, 7))
	}
	tests := []struct {
		name    string
		o       audio.Options
		samples []int16
		want    []seg
	}{
		{"tone between silences", audio.Options{}, concat(quiet(1), loud(1), quiet(1)), []seg{{1, 2}}},
		{"tone to the end", audio.Options{}, concat(quiet(1), loud(1)), []seg{{1, 2}}},
		{"tone from the start", audio.Options{}, concat(loud(1), quiet(1)), []seg{{0, 1}}},
		{"tone from the start in -35 dBFS noise", audio.Options{}, noisy(-35, loud(1), quiet(1), loud(1), quiet(1)), []seg{{0, 1}, {2, 3}}},
		{"click shorter than MinVoice", audio.Options{}, concat(quiet(1), loud(0.1), quiet(1)), nil},
		{"pause shorter than Hangover", audio.Options{}, concat(quiet(1), loud(0.5), quiet(0.2), loud(0.5), quiet(1)), []seg{{1, 2.2}}},
		{"pause longer than Hangover", audio.Options{}, concat(quiet(1), loud(0.5), quiet(0.5), loud(0.5), quiet(1)), []seg{{1, 1.5}, {2, 2.5}}},
		{"tone below Threshold", audio.Options{}, concat(quiet(1), tone(rate, 1, 440, 0.004), quiet(1)), nil},
		{"tone in -60 dBFS noise", audio.Options{}, noisy(-60, quiet(1), loud(1), quiet(1)), []seg{{1, 2}}},
		// Noise above Threshold: only the noise floor tells it from voice.
		{"tone in -35 dBFS noise", audio.Options{}, noisy(-35, quiet(1), loud(1), quiet(2)), []seg{{1, 2}}},
		{"noise alone", audio.Options{}, noisy(-35, quiet(3)), nil},
		{"click, no MinVoice", audio.Options{MinVoice: -1}, concat(quiet(1), loud(0.1), quiet(1)), []seg{{1, 1.1}}},
		{"short pause, no Hangover", audio.Options{Hangover: -1}, concat(quiet(1), loud(0.5), quiet(0.2), loud(0.5), quiet(1)), []seg{{1, 1.5}, {1.7, 2.2}}},
		{"quiet voice, lower Threshold", audio.Options{Threshold: -60}, concat(quiet(1), tone(rate, 1, 440, 0.004), quiet(1)), []seg{{1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustRun(t, audio.New(tt.o), wav{}.bytes(pcm(tt.samples)))
			var got []seg
			open := -1.0
			for i, r := range rs {
				switch r := r.(type) {
				case audio.VoiceStart:
					if open >= 0 {
						t.Fatalf("reply %d: voice_start inside a segment", i)
					}
					open = r.T
				case audio.Voice:
					if open != r.Start {
						t.Fatalf("reply %d: voice %+v, after voice_start at %v", i, r, open)
					}
					open = -1
					got = append(got, seg{r.Start, r.End})
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("segments %v, want %v", got, tt.want)
			}
			var voiced float64
			for i := range got {
				if !near(got[i].start, tt.want[i].start, 0.1) || !near(got[i].end, tt.want[i].end, 0.1) {
					t.Errorf("segments %v, want %v (within one window)", got, tt.want)
				}
				voiced += got[i].end - got[i].start
			}
			sum := rs.summary(t)
			if sum.VoiceSegments != len(got) || !near(sum.Voiced, voiced, 0.0005) {
				t.Errorf("summary %+v, want %d segments, %v s voiced", sum, len(got), voiced)
			}
		})
	}
}

// The voice_start reply comes as soon as MinVoice of voice has passed: right
// after the level of the window that completes it, long before the end.
func TestVoiceStartAtOnce(t *testing.T) {
	s := concat(silence(16000, 1), tone(16000, 1, 440, 0.5), silence(16000, 1))
	rs := mustRun(t, audio.New(audio.Options{}), wav{}.bytes(pcm(s)))
	i := slices.IndexFunc(rs, func(r any) bool { _, ok := r.(audio.VoiceStart); return ok })
	if i < 1 {
		t.Fatalf("no voice_start in %v", rs.lines(t))
	}
	if l, ok := rs[i-1].(audio.Level); !ok || l.T != 1.1 {
		t.Errorf("voice_start after %#v, want after the level at 1.1", rs[i-1])
	}
	if v := rs[i].(audio.VoiceStart); v.T != 1 {
		t.Errorf("voice_start at %v, want 1", v.T)
	}
}

// Replies depend only on the bytes, not on how they arrive.
func TestSplitReads(t *testing.T) {
	const rate = 16000
	speech := concat(silence(rate, 0.5), tone(rate, 0.7, 300, 0.3), silence(rate, 0.6))
	streams := map[string][]byte{
		"mono in noise": wav{before: []chunk{{"LIST", []byte("odd")}}}.bytes(pcm(mix(speech, noise(rate, 1.8, -50, 3)))),
		"stereo":        wav{channels: 2, fakeSize: true, size: 0xFFFFFFFF}.bytes(pcm(interleave(speech, noise(rate, 1.8, -40, 4)))[:7201]),
	}
	readers := map[string]func([]byte) io.Reader{
		"one byte at a time": func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"half reads":         func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"data with EOF":      func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		"pipe, small writes": func(b []byte) io.Reader {
			pr, pw := io.Pipe()
			go func() {
				for len(b) > 0 {
					n := min(len(b), 7)
					if _, err := pw.Write(b[:n]); err != nil {
						return
					}
					b = b[n:]
				}
				pw.Close()
			}()
			return pr
		},
	}
	for sname, b := range streams {
		want := mustRun(t, audio.New(audio.Options{}), b).lines(t)
		for rname, reader := range readers {
			t.Run(sname+"/"+rname, func(t *testing.T) {
				rs, err := run(audio.New(audio.Options{}), reader(b))
				if err != nil {
					t.Fatal(err)
				}
				if got := rs.lines(t); !slices.Equal(got, want) {
					t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			})
		}
	}
}

// A level reply comes as soon as its window is complete, while the upload
// is still open.
func TestLevelBeforeEOF(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	got := make(chan any, 100)
	done := make(chan error, 1)
	go func() {
		done <- audio.New(audio.Options{}).Process(context.Background(), pr, func(v any) { got <- v })
	}()
	window := pcm(tone(16000, 0.1, 440, 0.5))
	b := wav{fakeSize: true}.bytes(window)
	if _, err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
	for i, want := range []func(any) bool{is[audio.Format], is[audio.Level]} {
		select {
		case v := <-got:
			if !want(v) {
				t.Fatalf("reply %d is %#v", i, v)
			}
		case err := <-done:
			t.Fatalf("Process returned %v with the stream open", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("no reply %d with the stream open", i)
		}
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func is[T any](v any) bool { _, ok := v.(T); return ok }

func TestHeaders(t *testing.T) {
	samples := tone(16000, 0.3, 440, 0.5)
	data := pcm(samples)
	stereo := pcm(interleave(samples, samples))
	trailer := []chunk{{"LIST", []byte("INFOISFT\x06\x00\x00\x00ferry\x00")}}
	tests := []struct {
		name     string
		stream   []byte
		rate     int
		channels int
		samples  int64
	}{
		{"mono", wav{}.bytes(data), 16000, 1, 4800},
		{"stereo 44.1 kHz", wav{rate: 44100, channels: 2}.bytes(stereo), 44100, 2, 4800},
		{"8 channels", wav{channels: 8}.bytes(data), 16000, 8, 600},
		{"size 0", wav{fakeSize: true, size: 0}.bytes(data), 16000, 1, 4800},
		{"size 0xFFFFFFFF", wav{fakeSize: true, size: 0xFFFFFFFF}.bytes(data), 16000, 1, 4800},
		{"size 0x7FFFFFFF", wav{fakeSize: true, size: 0x7FFFFFFF}.bytes(data), 16000, 1, 4800},
		{"size 0x7FFFF000", wav{fakeSize: true, size: 0x7FFFF000}.bytes(data), 16000, 1, 4800},
		{"size beyond the end", wav{fakeSize: true, size: 1 << 20}.bytes(data), 16000, 1, 4800},
		{"placeholder size, a trailer read as samples", wav{fakeSize: true, size: 0, after: trailer}.bytes(data), 16000, 1, 4800 + 13},
		{"LIST before data", wav{before: trailer}.bytes(data), 16000, 1, 4800},
		{"odd chunk with pad byte", wav{before: []chunk{{"junk", []byte("abc")}, {"fact", []byte{1, 2, 3, 4}}}}.bytes(data), 16000, 1, 4800},
		{"fmt of 18 bytes", wav{fmtSize: 18}.bytes(data), 16000, 1, 4800},
		{"WAVE_FORMAT_EXTENSIBLE", wav{extensible: true, channels: 2}.bytes(stereo), 16000, 2, 4800},
		{"data ends before a chunk", wav{after: trailer}.bytes(data), 16000, 1, 4800},
		{"odd data size", wav{fakeSize: true, size: 201, after: trailer}.bytes(data[:201]), 16000, 1, 100},
		{"ends mid-sample", append(wav{fakeSize: true}.bytes(data), 0x55), 16000, 1, 4800},
		{"ends mid-frame", append(wav{channels: 2, fakeSize: true}.bytes(stereo), 1, 2, 3), 16000, 2, 4800},
		{"RF64", wav{rf64: true, after: trailer}.bytes(data), 16000, 1, 4800},
		{"no samples", wav{}.bytes(nil), 16000, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustRun(t, audio.New(audio.Options{}), tt.stream)
			want := audio.Format{Type: "format", SampleRate: tt.rate, Channels: tt.channels, Bits: 16}
			if f := rs.format(t); f != want {
				t.Errorf("format %+v, want %+v", f, want)
			}
			if s := rs.summary(t); s.Samples != tt.samples {
				t.Errorf("%d samples, want %d", s.Samples, tt.samples)
			}
		})
	}
}

func TestRaw(t *testing.T) {
	s := tone(8000, 0.5, 1000, 0.5)
	tests := []struct {
		name     string
		o        audio.Options
		stream   []byte
		rate     int
		channels int
		samples  int64
	}{
		{"defaults", audio.Options{Raw: true}, pcm(tone(16000, 0.5, 1000, 0.5)), 16000, 1, 8000},
		{"stereo 8 kHz", audio.Options{Raw: true, SampleRate: 8000, Channels: 2}, pcm(interleave(s, s)), 8000, 2, 4000},
		{"a WAV header is samples", audio.Options{Raw: true}, wav{}.bytes(nil), 16000, 1, 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustRun(t, audio.New(tt.o), tt.stream)
			want := audio.Format{Type: "format", SampleRate: tt.rate, Channels: tt.channels, Bits: 16}
			if f := rs.format(t); f != want {
				t.Errorf("format %+v, want %+v", f, want)
			}
			if s := rs.summary(t); s.Samples != tt.samples {
				t.Errorf("%d samples, want %d", s.Samples, tt.samples)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	data := pcm(tone(16000, 0.1, 440, 0.5))
	type errCase struct {
		name   string
		o      audio.Options
		stream []byte
		err    error
		msg    string
	}
	tests := []errCase{
		{"float", audio.Options{}, wav{tag: 3, bits: 32}.bytes(data), audio.ErrUnsupported, "audio: unsupported: 32-bit float samples"},
		{"extensible float", audio.Options{}, wav{tag: 3, bits: 32, extensible: true}.bytes(data), audio.ErrUnsupported, "32-bit float samples"},
		{"extensible of 18 bytes", audio.Options{}, wav{extensible: true, fmtSize: 18}.bytes(data), audio.ErrNotWAV, "EXTENSIBLE"},
		{"24-bit", audio.Options{}, wav{bits: 24}.bytes(data), audio.ErrUnsupported, "24-bit"},
		{"µ-law", audio.Options{}, wav{tag: 7, bits: 8}.bytes(data), audio.ErrUnsupported, "µ-law"},
		{"ADPCM", audio.Options{}, wav{tag: 2, bits: 4}.bytes(data), audio.ErrUnsupported, "0x0002"},
		{"no channels", audio.Options{}, wav{channels: -1}.bytes(data), audio.ErrUnsupported, "0 channels"},
		{"9 channels", audio.Options{}, wav{channels: 9}.bytes(data), audio.ErrUnsupported, "9 channels"},
		{"rate 0", audio.Options{}, wav{rate: -1}.bytes(data), audio.ErrUnsupported, "sample rate 0"},
		{"big-endian", audio.Options{}, append([]byte("RIFX"), wav{}.bytes(data)[4:]...), audio.ErrUnsupported, "RIFX"},
		{"garbage", audio.Options{}, []byte("this is not a recording at all, it is text"), audio.ErrNotWAV, ""},
		{"short garbage", audio.Options{}, []byte("hi"), audio.ErrNotWAV, ""},
		{"AVI", audio.Options{}, append([]byte("RIFF\x00\x00\x00\x00AVI "), data...), audio.ErrNotWAV, "AVI"},
		{"data before fmt", audio.Options{}, []byte("RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00"), audio.ErrNotWAV, "before the fmt"},
		{"short fmt", audio.Options{}, []byte("RIFF\x00\x00\x00\x00WAVEfmt \x04\x00\x00\x00\x01\x00\x01\x00"), audio.ErrNotWAV, "4 bytes"},
		{"empty", audio.Options{}, nil, io.ErrUnexpectedEOF, ""},
		{"no data chunk", audio.Options{}, wav{}.bytes(nil)[:36], io.ErrUnexpectedEOF, ""},
		{"chunk beyond the end", audio.Options{}, append(wav{}.bytes(nil)[:36], "LIST\xff\x00\x00\x00abc"...), io.ErrUnexpectedEOF, ""},
		{"raw, 9 channels", audio.Options{Raw: true, Channels: 9}, data, audio.ErrUnsupported, "9 channels"},
		{"raw, negative rate", audio.Options{Raw: true, SampleRate: -8000}, data, audio.ErrUnsupported, "sample rate -8000"},
	}
	// Every cut inside a header is an unexpected EOF.
	full := wav{extensible: true, before: []chunk{{"LIST", []byte("odd")}}}.bytes(data)
	hdr := len(full) - len(data)
	for n := 1; n < hdr; n++ {
		tests = append(tests, errCase{fmt.Sprintf("cut at %d", n), audio.Options{}, full[:n], io.ErrUnexpectedEOF, ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := run(audio.New(tt.o), bytes.NewReader(tt.stream))
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v, want %v containing %q", err, tt.err, tt.msg)
			}
			if len(rs) != 0 {
				t.Errorf("replies %v, want none", rs.lines(t))
			}
		})
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	b := wav{}.bytes(pcm(tone(16000, 0.25, 440, 0.5)))
	for _, n := range []int{10, 100} {
		r := io.MultiReader(bytes.NewReader(b[:n]), iotest.ErrReader(boom))
		if _, err := run(audio.New(audio.Options{}), r); !errors.Is(err, boom) {
			t.Errorf("cut at %d: error %v, want %v", n, err, boom)
		}
	}
}

// Cancelling ctx stops Process at its next read, with ctx's error and no
// summary, whether it was in the header or the samples.
func TestCancel(t *testing.T) {
	b := wav{fakeSize: true}.bytes(pcm(tone(16000, 0.2, 440, 0.5)))
	tests := []struct {
		name string
		sent []byte
	}{
		{"nothing sent", nil},
		{"in the header", b[:20]},
		{"in the samples", b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan any, 100)
			done := make(chan error, 1)
			go func() {
				done <- audio.New(audio.Options{}).Process(ctx, pr, func(v any) { got <- v })
			}()
			if len(tt.sent) > 0 {
				if _, err := pw.Write(tt.sent); err != nil {
					t.Fatal(err)
				}
			}
			cancel()
			pw.Close() // a blocked read returns; the next check sees ctx
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("error %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Process did not return")
			}
			close(got)
			for v := range got {
				if is[audio.Summary](v) {
					t.Errorf("a summary after cancelling")
				}
			}
		})
	}
}

func TestCancelledBefore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := iotest.ErrReader(errors.New("read after cancel"))
	err := audio.New(audio.Options{}).Process(ctx, r, func(any) {})
	if err != context.Canceled {
		t.Errorf("error %v, want context.Canceled", err)
	}
}
