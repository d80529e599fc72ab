package audio

import (
	"encoding/binary"
	"math"
)

const (
	// silenceDB is the level of digital silence, and the lowest reported.
	silenceDB = -120.0
	// floorRise is how fast the noise floor may rise, in dB per second:
	// slow enough that a sentence does not lift it much (the pauses
	// between words pull it back down at once), fast enough that it
	// follows a noise that grows, such as a fan starting, in seconds.
	floorRise = 3.0
)

// analyzer measures windows of samples and finds voice in them. All
// positions and lengths are counted in frames (one sample per channel),
// exactly, so the replies do not depend on how the stream was split.
type analyzer struct {
	emit               func(v any)
	rate               float64
	channels           int
	window             int64 // frames per window
	minVoice, hangover int64 // frames
	threshold, margin  float64

	// The window in progress.
	start int64  // its first frame
	n     int64  // its frames so far
	sumSq uint64 // sum of squared samples; at most 2^30 each

	// The noise floor in dBFS, set by the first window.
	floor     float64
	haveFloor bool

	// Voice activity.
	open       bool
	runStart   int64 // the first frame of the run of active windows
	run        int64 // its length while no segment is open
	segStart   int64 // the open segment's first frame
	lastActive int64 // the end of its last active window
	quiet      int64 // inactive frames since then
	segments   int
	voiced     int64
}

func newAnalyzer(o Options, f format, emit func(v any)) *analyzer {
	frames := func(d float64) int64 { return int64(math.Round(d * float64(f.rate))) }
	return &analyzer{
		emit:      emit,
		rate:      float64(f.rate),
		channels:  f.channels,
		window:    max(1, frames(o.Window.Seconds())),
		minVoice:  frames(o.MinVoice.Seconds()),
		hangover:  frames(o.Hangover.Seconds()),
		threshold: o.Threshold,
		margin:    o.Margin,
	}
}

// feed adds whole frames of interleaved little-endian samples.
func (a *analyzer) feed(b []byte) {
	step := 2 * a.channels
	for ; len(b) >= step; b = b[step:] {
		for c := 0; c < step; c += 2 {
			s := int64(int16(binary.LittleEndian.Uint16(b[c:])))
			a.sumSq += uint64(s * s)
		}
		if a.n++; a.n == a.window {
			a.endWindow()
		}
	}
}

// finish ends the stream: the partial window, an open segment, then the
// summary.
func (a *analyzer) finish() {
	if a.n > 0 {
		a.endWindow()
	}
	if a.open {
		a.closeSegment()
	}
	a.emit(Summary{
		Type:          "summary",
		Duration:      round(a.seconds(a.start), 3),
		Samples:       a.start,
		VoiceSegments: a.segments,
		Voiced:        round(a.seconds(a.voiced), 3),
	})
}

func (a *analyzer) endWindow() {
	rms := math.Sqrt(float64(a.sumSq)/float64(a.n*int64(a.channels))) / 32768
	db := silenceDB
	if rms > 0 {
		db = max(20*math.Log10(rms), silenceDB)
	}
	start, end := a.start, a.start+a.n
	a.emit(Level{
		Type: "level",
		T:    round(a.seconds(start), 3),
		Dur:  round(a.seconds(a.n), 3),
		RMS:  round(rms, 5),
		DBFS: round(db, 1),
	})
	a.start, a.n, a.sumSq = end, 0, 0
	a.detect(start, end, db)
}

// detect runs voice activity detection on the window [start, end) of
// level db.
func (a *analyzer) detect(start, end int64, db float64) {
	if !a.haveFloor {
		// Start from the first window, but no higher than the threshold:
		// a recording that starts with noise above it learns that noise
		// at once, and one that starts with voice still finds it.
		a.floor, a.haveFloor = min(db, a.threshold), true
	}
	active := db > max(a.threshold, a.floor+a.margin)
	// The floor falls at once and rises slowly: noise is what remains in
	// the quietest windows, and voice is never steady for long.
	a.floor = min(db, a.floor+floorRise*a.seconds(end-start))

	switch {
	case a.open && active:
		a.lastActive, a.quiet = end, 0
	case a.open:
		if a.quiet += end - start; a.quiet >= a.hangover {
			a.closeSegment()
		}
	case active:
		if a.run == 0 {
			a.runStart = start
		}
		if a.run += end - start; a.run >= a.minVoice {
			a.open, a.segStart, a.lastActive, a.quiet = true, a.runStart, end, 0
			a.emit(VoiceStart{Type: "voice_start", T: round(a.seconds(a.segStart), 3)})
		}
	default:
		a.run = 0
	}
}

func (a *analyzer) closeSegment() {
	a.emit(Voice{
		Type:  "voice",
		Start: round(a.seconds(a.segStart), 3),
		End:   round(a.seconds(a.lastActive), 3),
	})
	a.segments++
	a.voiced += a.lastActive - a.segStart
	a.open, a.run = false, 0
}

func (a *analyzer) seconds(frames int64) float64 { return float64(frames) / a.rate }

// round rounds x to d decimals, and never to -0.
func round(x float64, d int) float64 {
	p := math.Pow10(d)
	r := math.Round(x*p) / p
	if r == 0 {
		return 0
	}
	return r
}
