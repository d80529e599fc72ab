// Package audio is a stream.Processor for a voice recording uploaded while
// it is being recorded: 16-bit PCM, as a WAV stream or raw s16le.
//
// It reports the level of every window of the recording (RMS over all
// channels, relative to full scale, and in dBFS) as soon as the window is
// complete, and finds the stretches of voice in it. Voice activity is
// energy based: a window is active when its level exceeds both an absolute
// threshold and an estimated noise floor plus a margin. The noise floor
// starts at the first window's level (at most the threshold), then falls
// at once to any quieter window and rises at most 3 dB per second, so it
// settles on the pauses between words rather than on the words, and
// follows a noise that grows within seconds. A segment opens after
// MinVoice of consecutive active windows and closes after Hangover of
// inactive ones.
//
// Replies, in order: one Format once the format is known; a Level per
// window, with VoiceStart and Voice among them as segments open and close;
// a Summary at the end of the stream.
package audio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultWindow     = 100 * time.Millisecond
	DefaultThreshold  = -45.0 // dBFS
	DefaultMargin     = 12.0  // dB
	DefaultMinVoice   = 200 * time.Millisecond
	DefaultHangover   = 300 * time.Millisecond
	DefaultSampleRate = 16000
	DefaultChannels   = 1
)

// MaxChannels bounds the channels of a stream.
const MaxChannels = 8

// MinSampleRate is the lowest sample rate taken, in Hz, below any real
// recording's (telephone speech is 8000). It keeps a window of samples
// hundreds of bytes long, so the replies stay a fraction of the content:
// at 1 Hz every two bytes would make a level reply.
const MinSampleRate = 1000

// Errors of Process, wrapped with detail.
var (
	ErrNotWAV      = errors.New("audio: not a WAV stream")
	ErrUnsupported = errors.New("audio: unsupported")
	// ErrInvalidQuery reports a query parameter (rate, channels) that is
	// not an integer in its range.
	ErrInvalidQuery = errors.New("audio: invalid query parameter")
)

// readSize is the most read at once: the processor handles whatever one
// Read returns, so a small buffer keeps replies close behind the upload.
const readSize = 4 << 10

// Options configure a Processor. Zero fields take their defaults.
type Options struct {
	// Window is the span of one level reply. Default 100ms.
	Window time.Duration
	// Threshold is the level in dBFS a window must exceed to count as
	// voice, however low the noise. Default -45.
	Threshold float64
	// Margin is how far in dB above the estimated noise floor a window
	// must be to count as voice. Default 12.
	Margin float64
	// MinVoice is how long voice must last before a segment opens; it
	// keeps clicks and knocks out. Default 200ms; negative means none.
	MinVoice time.Duration
	// Hangover is how long the voice must stay away before a segment
	// closes; it keeps the pauses between words inside. Default 300ms;
	// negative means none.
	Hangover time.Duration

	// Raw says the stream is bare signed 16-bit little-endian samples,
	// interleaved, with no header; SampleRate (default 16000) and
	// Channels (default 1) describe them. Without Raw they are ignored
	// and the WAV header says.
	Raw        bool
	SampleRate int
	Channels   int
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Threshold == 0 {
		o.Threshold = DefaultThreshold
	}
	if o.Margin == 0 {
		o.Margin = DefaultMargin
	}
	switch {
	case o.MinVoice == 0:
		o.MinVoice = DefaultMinVoice
	case o.MinVoice < 0:
		o.MinVoice = 0
	}
	switch {
	case o.Hangover == 0:
		o.Hangover = DefaultHangover
	case o.Hangover < 0:
		o.Hangover = 0
	}
	if o.SampleRate == 0 {
		o.SampleRate = DefaultSampleRate
	}
	if o.Channels == 0 {
		o.Channels = DefaultChannels
	}
	return o
}

// Processor analyses voice recordings. It holds only its options, so one
// Processor may serve any number of streams at once.
type Processor struct {
	o Options
}

// New returns a Processor with options o.
func New(o Options) *Processor {
	return &Processor{o: o.withDefaults()}
}

// Format is the first reply: the stream's format.
type Format struct {
	Type       string `json:"type"` // "format"
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
	Bits       int    `json:"bits"`
}

// Level reports one window: T is its start and Dur its length, in seconds;
// RMS is over all samples of all channels, relative to full scale; DBFS is
// 20·log10(RMS), -120 for digital silence.
type Level struct {
	Type string  `json:"type"` // "level"
	T    float64 `json:"t"`
	Dur  float64 `json:"dur"`
	RMS  float64 `json:"rms"`
	DBFS float64 `json:"dbfs"`
}

// VoiceStart reports a segment of voice as soon as it is certain, that is
// MinVoice after T, the segment's start in seconds.
type VoiceStart struct {
	Type string  `json:"type"` // "voice_start"
	T    float64 `json:"t"`
}

// Voice reports a finished segment of voice, Hangover after its end;
// Start and End are in seconds, End being the end of its last active
// window.
type Voice struct {
	Type  string  `json:"type"` // "voice"
	Start float64 `json:"start"`
	End   float64 `json:"end"`
}

// Summary is the last reply: Duration in seconds, Samples per channel,
// the number of segments of voice and their total length in seconds.
type Summary struct {
	Type          string  `json:"type"` // "summary"
	Duration      float64 `json:"duration"`
	Samples       int64   `json:"samples"`
	VoiceSegments int     `json:"voice_segments"`
	Voiced        float64 `json:"voiced"`
}

// Process reads a recording from r until io.EOF, or for a WAV stream the
// end of its data chunk, emitting Format, Level, VoiceStart, Voice and
// Summary replies as it goes. It returns nil at the end, ctx.Err() when
// ctx ends (noticed between reads), an error wrapping ErrNotWAV,
// ErrUnsupported or io.ErrUnexpectedEOF for a header it cannot use, or
// the error of r.
func (p *Processor) Process(ctx context.Context, r io.Reader, emit func(v any)) error {
	in := &input{ctx: ctx, r: r, buf: make([]byte, readSize)}
	var (
		f    format
		left int64 = -1 // bytes of samples left; -1 until EOF
		err  error
	)
	if p.o.Raw {
		f = format{rate: p.o.SampleRate, channels: p.o.Channels}
		err = f.check()
	} else {
		f, left, err = readHeader(in)
	}
	if err != nil {
		return err
	}
	emit(Format{Type: "format", SampleRate: f.rate, Channels: f.channels, Bits: 16})

	a := newAnalyzer(p.o, f, emit)
	frame := 2 * f.channels
	for {
		n := in.hi - in.lo
		if left >= 0 && int64(n) > left {
			n = int(left)
		}
		n -= n % frame
		if n > 0 {
			a.feed(in.buf[in.lo : in.lo+n])
			in.lo += n
			if left >= 0 {
				left -= int64(n)
			}
		}
		if left >= 0 && left < int64(frame) {
			break // the data chunk is done; what follows it is not sound
		}
		if in.err != nil {
			if in.err == io.EOF {
				break // a partial frame left over is dropped
			}
			return fmt.Errorf("audio: %w", in.err)
		}
		if err := in.read(); err != nil {
			return err
		}
	}
	a.finish()
	return nil
}

// format is what the processor needs of a stream's format; samples are
// always 16-bit.
type format struct {
	rate, channels int
}

func (f format) check() error {
	if f.rate < MinSampleRate || f.rate > math.MaxInt32 {
		return fmt.Errorf("%w: sample rate %d", ErrUnsupported, f.rate)
	}
	if f.channels < 1 || f.channels > MaxChannels {
		return fmt.Errorf("%w: %d channels (1 to %d)", ErrUnsupported, f.channels, MaxChannels)
	}
	return nil
}

// input reads r in modest pieces, checking ctx around every read.
type input struct {
	ctx    context.Context
	r      io.Reader
	buf    []byte
	lo, hi int   // buf[lo:hi] is read but not yet used
	err    error // the error of r, kept once seen (io.EOF at the end)
}

// read calls r.Read once, adding to what is buffered. It returns only
// ctx's error; the reader's is kept in in.err for after the bytes that
// came with it.
func (in *input) read() error {
	if err := in.ctx.Err(); err != nil {
		return err
	}
	if in.lo > 0 {
		in.hi = copy(in.buf, in.buf[in.lo:in.hi])
		in.lo = 0
	}
	n, err := in.r.Read(in.buf[in.hi:])
	in.hi += n
	if err != nil {
		in.err = err
	}
	return in.ctx.Err()
}

// need returns the next n bytes (n <= len(in.buf)), valid until the next
// read. When the stream ends first it returns what there is and io.EOF.
func (in *input) need(n int) ([]byte, error) {
	for in.hi-in.lo < n {
		if in.err != nil {
			return in.buf[in.lo:in.hi], in.err
		}
		if err := in.read(); err != nil {
			return nil, err
		}
	}
	b := in.buf[in.lo : in.lo+n]
	in.lo += n
	return b, nil
}

// skip drops the next n bytes.
func (in *input) skip(n int64) error {
	for n > 0 {
		if k := int64(in.hi - in.lo); k > 0 {
			k = min(k, n)
			in.lo += int(k)
			n -= k
			continue
		}
		if in.err != nil {
			return in.err
		}
		if err := in.read(); err != nil {
			return err
		}
	}
	return nil
}
