package hls

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxPlaylistSize is the most bytes Parse reads of a playlist: a larger
// one is refused, so that a hostile server cannot make it hold an unbounded
// playlist in memory. Real playlists are far smaller: a day of 2-second
// segments with 60-byte URIs takes about 3 MiB. A program that fetches
// playlists may stop reading there.
const MaxPlaylistSize = 16 << 20

// Limits on what Parse holds of one line and of a multivariant playlist.
const (
	maxLineLength = 1 << 20
	// maxMasterEntries bounds the variants, renditions and session keys
	// of a multivariant playlist; real ones have tens.
	maxMasterEntries = 10000
	// maxSeconds bounds a duration or time offset: what
	// EXT-X-TARGETDURATION can hold, so that a sum of a playlist's
	// durations and its rounding to whole seconds never overflow.
	maxSeconds = math.MaxInt32
)

// DefaultMaxSegments is how many segments a media playlist may hold unless
// Limits says otherwise: a day and more of one-second segments. Each
// segment costs a parser about 300 bytes and a whole download about 1.5 KiB.
const DefaultMaxSegments = 100_000

// Limits bound what a parse holds in memory. The zero value holds the
// defaults; the package's Parse functions use it.
type Limits struct {
	// MaxSegments bounds the segments of a media playlist; 0 means
	// DefaultMaxSegments, negative means no bound but the 16 MiB a
	// playlist may take.
	MaxSegments int
}

// SegmentLimit is the number of segments l allows a media playlist, with
// the zero value resolved: MaxSegments, DefaultMaxSegments when that is 0,
// or a negative number when there is no bound. A program that gathers
// segments over several playlists, as a live recording does over its
// reloads, bounds what it holds with the same number.
func (l Limits) SegmentLimit() int {
	if l.MaxSegments == 0 {
		return DefaultMaxSegments
	}
	return l.MaxSegments
}

// LimitError reports a playlist that holds more than a limit allows: more
// segments than Limits.MaxSegments, or more variants and renditions than
// a multivariant playlist may have. It is refused while it is read, before
// it takes the memory.
//
// It says what a playlist holds, not that the caller asked for something
// wrong: it is not ferry's LimitError (a request's field outside its
// bounds, refused before anything is fetched, matching
// ferry.ErrInvalidRequest). A download that meets it fails as a transfer
// does; a larger Limits.MaxSegments (HLSRequest.MaxSegments) lets the same
// playlist through.
type LimitError struct {
	What  string // "segments", or "variants and renditions"
	Limit int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("hls: the playlist holds more than %d %s", e.Limit, e.What)
}

// SyntaxError reports a playlist that does not follow RFC 8216.
type SyntaxError struct {
	// Line is the 1-based number of the offending line, or 0 when the
	// problem is with the playlist as a whole (a missing
	// EXT-X-TARGETDURATION, for instance).
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("hls: line %d: %s", e.Line, e.Msg)
	}
	return "hls: " + e.Msg
}

// ErrNotMaster is returned by ParseMaster for a valid media playlist, and
// ErrNotMedia by ParseMedia for a valid master playlist.
var (
	ErrNotMaster = errors.New("hls: not a master playlist")
	ErrNotMedia  = errors.New("hls: not a media playlist")
)

// Parse reads a master or a media playlist and returns a *Master or a
// *Media. A malformed playlist yields a *SyntaxError; an error from r is
// returned wrapped. Playlists larger than 16 MiB, or with a line longer
// than 1 MiB, are refused.
//
// Lines may end in LF or CRLF, and a UTF-8 byte order mark before #EXTM3U
// is tolerated. Spaces and tabs around a line are ignored. Unknown tags,
// and unknown attributes of known tags, are ignored (RFC 8216 §6.3.1).
//
// A media playlist of more than DefaultMaxSegments segments yields a
// *LimitError; Limits.Parse sets another bound.
func Parse(r io.Reader) (Playlist, error) { return Limits{}.Parse(r) }

// ParseMaster is Parse for a playlist that must be a master playlist.
func ParseMaster(r io.Reader) (*Master, error) { return Limits{}.ParseMaster(r) }

// ParseMedia is Parse for a playlist that must be a media playlist.
func ParseMedia(r io.Reader) (*Media, error) { return Limits{}.ParseMedia(r) }

// Parse reads a master or a media playlist as the package's Parse does,
// with the segments of a media playlist bounded as l says (SegmentLimit)
// instead of by DefaultMaxSegments.
func (l Limits) Parse(r io.Reader) (Playlist, error) {
	lr := &lineReader{r: bufio.NewReader(r)}
	p := parser{maxSegments: l.SegmentLimit()}
	for {
		b, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		p.line = lr.n
		if p.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\uFEFF"))
			if string(bytes.Trim(b, " \t")) != "#EXTM3U" {
				return nil, p.errorf("first line is not #EXTM3U")
			}
			continue
		}
		if err := p.parseLine(string(b)); err != nil {
			return nil, err
		}
	}
	if lr.n == 0 {
		return nil, &SyntaxError{Line: 1, Msg: "empty playlist: no #EXTM3U"}
	}
	return p.finish()
}

// ParseMaster reads a playlist that must be a multivariant (master)
// playlist, holding no more than l allows: a valid media playlist yields
// ErrNotMaster, and the errors are otherwise those of Limits.Parse.
func (l Limits) ParseMaster(r io.Reader) (*Master, error) {
	pl, err := l.Parse(r)
	if err != nil {
		return nil, err
	}
	m, ok := pl.(*Master)
	if !ok {
		return nil, ErrNotMaster
	}
	return m, nil
}

// ParseMedia reads a playlist that must be a media playlist, of no more
// segments than l allows (SegmentLimit): a valid master playlist yields
// ErrNotMedia, a longer one a *LimitError, and the errors are otherwise
// those of Limits.Parse.
func (l Limits) ParseMedia(r io.Reader) (*Media, error) {
	pl, err := l.Parse(r)
	if err != nil {
		return nil, err
	}
	m, ok := pl.(*Media)
	if !ok {
		return nil, ErrNotMedia
	}
	return m, nil
}

// lineReader splits its input into lines ending in LF or CRLF, enforcing
// MaxPlaylistSize and maxLineLength as it goes.
type lineReader struct {
	r    *bufio.Reader
	n    int   // number of the last line returned
	size int64 // bytes read so far
	buf  []byte
}

func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	for {
		chunk, err := lr.r.ReadSlice('\n')
		lr.size += int64(len(chunk))
		if lr.size > MaxPlaylistSize {
			return nil, &SyntaxError{Line: lr.n + 1, Msg: fmt.Sprintf("playlist larger than %d MiB", MaxPlaylistSize>>20)}
		}
		if len(lr.buf)+len(chunk) > maxLineLength+len("\r\n") {
			return nil, &SyntaxError{Line: lr.n + 1, Msg: "line longer than 1 MiB"}
		}
		lr.buf = append(lr.buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(lr.buf) == 0 {
			return nil, io.EOF
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("hls: reading playlist: %w", err)
		}
		break
	}
	lr.n++
	line := bytes.TrimSuffix(lr.buf, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > maxLineLength {
		return nil, &SyntaxError{Line: lr.n, Msg: "line longer than 1 MiB"}
	}
	return line, nil
}

type kind int

const (
	unknownKind kind = iota
	masterKind
	mediaKind
)

func (k kind) String() string {
	if k == masterKind {
		return "master"
	}
	return "media"
}

type parser struct {
	maxSegments int // < 0: no bound

	line     int
	kind     kind
	kindLine int             // the line that decided kind
	seen     map[string]bool // tags that may appear only once

	// Tags that both kinds may hold.
	version     int
	independent bool
	start       *Start

	master      Master
	variant     *Variant // an EXT-X-STREAM-INF waiting for its URI line
	variantLine int

	media      Media
	haveTarget bool
	// The next segment, as far as its tags have been read.
	next    Segment
	haveInf bool
	infLine int
	rng     *pendingRange
	// State that carries over from segment to segment.
	key     *Key
	mp      *Map
	bitrate int64
	discs   int64 // discontinuities so far
}

// pendingRange is an EXT-X-BYTERANGE whose offset may still have to be
// resolved against the previous segment.
type pendingRange struct {
	length, offset int64
	hasOffset      bool
	line           int
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) parseLine(line string) error {
	// A lone CR can only come from a broken line ending or a value that
	// cannot be written back; RFC 8216 §4.1 allows none.
	if strings.IndexByte(line, '\r') >= 0 {
		return p.errorf("carriage return inside a line")
	}
	line = strings.Trim(line, " \t")
	switch {
	case line == "":
		return nil
	case line[0] != '#':
		return p.uri(line)
	case !strings.HasPrefix(line, "#EXT"):
		return nil // a comment
	}
	name, value, _ := strings.Cut(line[1:], ":")
	if p.variant != nil {
		return p.errorf("%s where the URI of the EXT-X-STREAM-INF on line %d should be", short(name), p.variantLine)
	}
	return p.tag(name, value)
}

// setKind records that tag belongs to a playlist of kind k, and refuses a
// playlist that mixes master and media tags (RFC 8216 §4.3.4, §6.3.1).
func (p *parser) setKind(k kind, tag string) error {
	if p.kind == unknownKind {
		p.kind, p.kindLine = k, p.line
		return nil
	}
	if p.kind != k {
		return p.errorf("%s in a %v playlist (see line %d)", tag, p.kind, p.kindLine)
	}
	return nil
}

func (p *parser) once(tag string) error {
	if p.seen[tag] {
		return p.errorf("more than one %s", tag)
	}
	if p.seen == nil {
		p.seen = make(map[string]bool)
	}
	p.seen[tag] = true
	return nil
}

// masterEntry refuses one more variant, rendition or session key past
// maxMasterEntries.
func (p *parser) masterEntry() error {
	m := &p.master
	if len(m.Variants)+len(m.IFrameVariants)+len(m.Renditions)+len(m.SessionKeys) >= maxMasterEntries {
		return &LimitError{What: "variants and renditions", Limit: maxMasterEntries}
	}
	return nil
}

// newSegment refuses a segment past the limit, or one whose media or
// discontinuity sequence number would pass 2^63-1.
func (p *parser) newSegment(s *Segment) error {
	n := len(p.media.Segments)
	if p.maxSegments >= 0 && n >= p.maxSegments {
		return &LimitError{What: "segments", Limit: p.maxSegments}
	}
	if p.media.MediaSequence > math.MaxInt64-int64(n) {
		return p.errorf("the segment's media sequence number past 2^63-1")
	}
	if s.Discontinuity {
		if p.discs >= math.MaxInt64-p.media.DiscontinuitySequence {
			return p.errorf("the segment's discontinuity sequence number past 2^63-1")
		}
		p.discs++
	}
	return nil
}

func (p *parser) uri(line string) error {
	if p.variant != nil {
		if err := p.masterEntry(); err != nil {
			return err
		}
		p.variant.URI = line
		p.master.Variants = append(p.master.Variants, *p.variant)
		p.variant = nil
		return nil
	}
	if p.kind == masterKind {
		return p.errorf("URI line without EXT-X-STREAM-INF")
	}
	if !p.haveInf {
		return p.errorf("segment URI without EXTINF")
	}
	s := p.next
	s.URI = line
	s.Key, s.Map, s.Bitrate = p.key, p.mp, p.bitrate
	if r := p.rng; r != nil {
		br := &ByteRange{Length: r.length, Offset: r.offset}
		if !r.hasOffset {
			// RFC 8216 §4.3.2.2: without an offset, the range continues
			// the previous segment, which must be a range of the same
			// resource.
			n := len(p.media.Segments)
			if n == 0 {
				return &SyntaxError{Line: r.line, Msg: "EXT-X-BYTERANGE without an offset on the first segment"}
			}
			prev := &p.media.Segments[n-1]
			if prev.ByteRange == nil || prev.URI != s.URI {
				return &SyntaxError{Line: r.line, Msg: "EXT-X-BYTERANGE without an offset does not follow a range of the same URI"}
			}
			br.Offset = prev.ByteRange.Offset + prev.ByteRange.Length
			if br.Offset > math.MaxInt64-br.Length {
				return &SyntaxError{Line: r.line, Msg: "EXT-X-BYTERANGE: range ends past 2^63"}
			}
		}
		s.ByteRange = br
	}
	if err := p.newSegment(&s); err != nil {
		return err
	}
	p.media.Segments = append(p.media.Segments, s)
	p.next, p.haveInf, p.rng = Segment{}, false, nil
	return nil
}

// tagKinds are the tags that belong to one kind of playlist.
var tagKinds = map[string]kind{
	"EXT-X-STREAM-INF":             masterKind,
	"EXT-X-I-FRAME-STREAM-INF":     masterKind,
	"EXT-X-MEDIA":                  masterKind,
	"EXT-X-SESSION-KEY":            masterKind,
	"EXT-X-TARGETDURATION":         mediaKind,
	"EXT-X-PLAYLIST-TYPE":          mediaKind,
	"EXT-X-ENDLIST":                mediaKind,
	"EXT-X-I-FRAMES-ONLY":          mediaKind,
	"EXTINF":                       mediaKind,
	"EXT-X-BYTERANGE":              mediaKind,
	"EXT-X-DISCONTINUITY":          mediaKind,
	"EXT-X-KEY":                    mediaKind,
	"EXT-X-MAP":                    mediaKind,
	"EXT-X-PROGRAM-DATE-TIME":      mediaKind,
	"EXT-X-GAP":                    mediaKind,
	"EXT-X-BITRATE":                mediaKind,
	"EXT-X-MEDIA-SEQUENCE":         mediaKind,
	"EXT-X-DISCONTINUITY-SEQUENCE": mediaKind,
}

func (p *parser) tag(name, value string) error {
	if k, ok := tagKinds[name]; ok {
		if err := p.setKind(k, name); err != nil {
			return err
		}
	}
	switch name {
	// Tags of either kind of playlist (RFC 8216 §4.3.1, §4.3.5).
	case "EXT-X-VERSION":
		// §4.3.1.2: a client must fail on a second EXT-X-VERSION.
		if err := p.once(name); err != nil {
			return err
		}
		v, err := p.smallInt(name, value)
		if err != nil {
			return err
		}
		p.version = v
	case "EXT-X-INDEPENDENT-SEGMENTS":
		p.independent = true
	case "EXT-X-START":
		if err := p.once(name); err != nil {
			return err
		}
		a, err := p.attrs(name, value)
		if err != nil {
			return err
		}
		a.require("TIME-OFFSET")
		p.start = &Start{TimeOffset: a.signedFloat("TIME-OFFSET"), Precise: a.yesNo("PRECISE")}
		return a.err

	// Master playlist tags (§4.3.4).
	case "EXT-X-STREAM-INF":
		v, err := p.variantAttrs(name, value)
		if err != nil {
			return err
		}
		p.variant, p.variantLine = v, p.line
	case "EXT-X-I-FRAME-STREAM-INF":
		v, err := p.variantAttrs(name, value)
		if err != nil {
			return err
		}
		if err := p.masterEntry(); err != nil {
			return err
		}
		p.master.IFrameVariants = append(p.master.IFrameVariants, *v)
	case "EXT-X-MEDIA":
		return p.rendition(name, value)
	case "EXT-X-SESSION-KEY":
		k, err := p.keyAttrs(name, value)
		if err != nil {
			return err
		}
		if k == nil {
			return p.errorf("EXT-X-SESSION-KEY with METHOD=NONE") // §4.3.4.5
		}
		if err := p.masterEntry(); err != nil {
			return err
		}
		p.master.SessionKeys = append(p.master.SessionKeys, *k)

	// Media playlist tags (§4.3.3).
	case "EXT-X-TARGETDURATION":
		if err := p.once(name); err != nil {
			return err
		}
		v, err := p.smallInt(name, value)
		if err != nil {
			return err
		}
		p.media.TargetDuration, p.haveTarget = v, true
	case "EXT-X-MEDIA-SEQUENCE":
		v, err := p.sequence(name, value)
		if err != nil {
			return err
		}
		p.media.MediaSequence = v
	case "EXT-X-DISCONTINUITY-SEQUENCE":
		v, err := p.sequence(name, value)
		if err != nil {
			return err
		}
		p.media.DiscontinuitySequence = v
	case "EXT-X-PLAYLIST-TYPE":
		if err := p.once(name); err != nil {
			return err
		}
		if value != "VOD" && value != "EVENT" {
			return p.errorf("EXT-X-PLAYLIST-TYPE: want VOD or EVENT, got %s", short(value))
		}
		p.media.PlaylistType = value
	case "EXT-X-ENDLIST":
		p.media.EndList = true
	case "EXT-X-I-FRAMES-ONLY":
		p.media.IFramesOnly = true

	// Media segment tags (§4.3.2): they apply to the next URI line.
	case "EXTINF":
		if p.haveInf {
			return p.errorf("EXTINF after the EXTINF on line %d, without a URI between them", p.infLine)
		}
		// The comma is required by §4.3.2.1 but often left out when
		// there is no title.
		d, title, _ := strings.Cut(value, ",")
		if strings.HasPrefix(d, "-") {
			return p.errorf("EXTINF: negative duration %s", short(d))
		}
		dur, err := parseSeconds(d)
		if err != nil {
			return p.errorf("EXTINF: %v", err)
		}
		p.next.Duration, p.next.Title = dur, title
		p.haveInf, p.infLine = true, p.line
	case "EXT-X-BYTERANGE":
		n, o, hasOffset, err := parseRange(value)
		if err != nil {
			return p.errorf("EXT-X-BYTERANGE: %v", err)
		}
		p.rng = &pendingRange{length: n, offset: o, hasOffset: hasOffset, line: p.line}
	case "EXT-X-DISCONTINUITY":
		p.next.Discontinuity = true
	case "EXT-X-KEY":
		k, err := p.keyAttrs(name, value)
		if err != nil {
			return err
		}
		p.key = k
	case "EXT-X-MAP":
		return p.mapAttrs(name, value)
	case "EXT-X-PROGRAM-DATE-TIME":
		t, err := parseTime(value)
		if err != nil {
			return p.errorf("EXT-X-PROGRAM-DATE-TIME: %v", err)
		}
		p.next.ProgramDateTime = t
	case "EXT-X-GAP":
		p.next.Gap = true
	case "EXT-X-BITRATE":
		v, err := p.int(name, value)
		if err != nil {
			return err
		}
		p.bitrate = v
	}
	return nil
}

// sequence reads EXT-X-MEDIA-SEQUENCE or EXT-X-DISCONTINUITY-SEQUENCE.
// Each appears once, before the first segment, since the numbers they set
// count from the first segment (§4.3.3.2, §4.3.3.3); the media sequence
// number also gives a segment the IV to decrypt it with.
func (p *parser) sequence(name, value string) (int64, error) {
	if err := p.once(name); err != nil {
		return 0, err
	}
	if len(p.media.Segments) > 0 || p.haveInf {
		return 0, p.errorf("%s after the first segment", name)
	}
	return p.int(name, value)
}

func (p *parser) int(name, value string) (int64, error) {
	v, err := parseDecInt(value)
	if err != nil {
		return 0, p.errorf("%s: %v", name, err)
	}
	return v, nil
}

// smallInt reads a decimal-integer for an int field, bounded so that it
// fits one on any platform.
func (p *parser) smallInt(name, value string) (int, error) {
	v, err := p.int(name, value)
	if err == nil && v > math.MaxInt32 {
		err = p.errorf("%s: %d is out of range", name, v)
	}
	return int(v), err
}

func (p *parser) finish() (Playlist, error) {
	if p.variant != nil {
		return nil, &SyntaxError{Line: p.variantLine, Msg: "EXT-X-STREAM-INF without a URI line"}
	}
	if p.haveInf {
		return nil, &SyntaxError{Line: p.infLine, Msg: "EXTINF without a segment URI"}
	}
	if p.rng != nil {
		return nil, &SyntaxError{Line: p.rng.line, Msg: "EXT-X-BYTERANGE without a segment URI"}
	}
	switch p.kind {
	case masterKind:
		m := &p.master
		m.Version, m.IndependentSegments, m.Start = p.version, p.independent, p.start
		return m, nil
	case mediaKind:
		if !p.haveTarget {
			return nil, &SyntaxError{Msg: "media playlist without EXT-X-TARGETDURATION"}
		}
		m := &p.media
		m.Version, m.IndependentSegments, m.Start = p.version, p.independent, p.start
		return m, nil
	}
	return nil, &SyntaxError{Msg: "neither a master nor a media playlist: no variant, rendition, segment or EXT-X-TARGETDURATION"}
}

// variantAttrs reads EXT-X-STREAM-INF or EXT-X-I-FRAME-STREAM-INF
// (§4.3.4.2, §4.3.4.3). The latter has a URI attribute and lacks the
// attributes that only make sense for a stream with audio.
func (p *parser) variantAttrs(tag, value string) (*Variant, error) {
	a, err := p.attrs(tag, value)
	if err != nil {
		return nil, err
	}
	iframe := tag == "EXT-X-I-FRAME-STREAM-INF"
	a.require("BANDWIDTH")
	v := &Variant{
		Bandwidth:        a.int("BANDWIDTH"),
		AverageBandwidth: a.int("AVERAGE-BANDWIDTH"),
		Codecs:           a.quoted("CODECS"),
		Resolution:       a.resolution("RESOLUTION"),
		HDCPLevel:        a.enum("HDCP-LEVEL"),
		Video:            a.quoted("VIDEO"),
	}
	if iframe {
		a.require("URI")
		v.URI = a.quoted("URI")
	} else {
		v.FrameRate = a.decFloat("FRAME-RATE")
		v.Audio = a.quoted("AUDIO")
		v.Subtitles = a.quoted("SUBTITLES")
		if cc, ok := a.m["CLOSED-CAPTIONS"]; ok {
			if !cc.quoted && cc.s != "NONE" {
				a.fail("CLOSED-CAPTIONS", "want a quoted group ID or NONE, got %s", short(cc.s))
			}
			v.ClosedCaptions = cc.s
		}
	}
	return v, a.err
}

func (p *parser) rendition(tag, value string) error {
	a, err := p.attrs(tag, value)
	if err != nil {
		return err
	}
	a.require("TYPE", "GROUP-ID", "NAME")
	r := Rendition{
		Type:            a.enum("TYPE"),
		GroupID:         a.quoted("GROUP-ID"),
		Name:            a.quoted("NAME"),
		URI:             a.quoted("URI"),
		Language:        a.quoted("LANGUAGE"),
		AssocLanguage:   a.quoted("ASSOC-LANGUAGE"),
		Default:         a.yesNo("DEFAULT"),
		Autoselect:      a.yesNo("AUTOSELECT"),
		Forced:          a.yesNo("FORCED"),
		InstreamID:      a.quoted("INSTREAM-ID"),
		Characteristics: a.quoted("CHARACTERISTICS"),
		Channels:        a.quoted("CHANNELS"),
	}
	if a.err != nil {
		return a.err
	}
	switch r.Type {
	case "AUDIO", "VIDEO", "SUBTITLES":
	case "CLOSED-CAPTIONS":
		// Captions travel in the video stream (§4.3.4.1).
		if _, ok := a.m["URI"]; ok {
			return p.errorf("EXT-X-MEDIA: URI with TYPE=CLOSED-CAPTIONS")
		}
	default:
		return p.errorf("EXT-X-MEDIA: unknown TYPE %s", short(r.Type))
	}
	if err := p.masterEntry(); err != nil {
		return err
	}
	p.master.Renditions = append(p.master.Renditions, r)
	return nil
}

// keyAttrs reads EXT-X-KEY or EXT-X-SESSION-KEY (§4.3.2.4); it returns
// nil for METHOD=NONE.
func (p *parser) keyAttrs(tag, value string) (*Key, error) {
	a, err := p.attrs(tag, value)
	if err != nil {
		return nil, err
	}
	a.require("METHOD")
	method := a.enum("METHOD")
	if a.err != nil || method == "NONE" {
		return nil, a.err
	}
	a.require("URI")
	k := &Key{
		Method:            method,
		URI:               a.quoted("URI"),
		KeyFormat:         a.quoted("KEYFORMAT"),
		KeyFormatVersions: a.quoted("KEYFORMATVERSIONS"),
	}
	if iv, ok := a.m["IV"]; ok {
		b, err := parseIV(iv)
		if err != nil {
			a.fail("IV", "%v", err)
		}
		k.IV = b
	}
	return k, a.err
}

func (p *parser) mapAttrs(tag, value string) error {
	a, err := p.attrs(tag, value)
	if err != nil {
		return err
	}
	a.require("URI")
	m := &Map{URI: a.quoted("URI"), Key: p.key}
	if a.has("BYTERANGE") {
		// §4.3.2.5: an absent offset is 0, not a continuation.
		n, o, _, err := parseRange(a.quoted("BYTERANGE"))
		if err != nil {
			a.fail("BYTERANGE", "%v", err)
		}
		m.ByteRange = &ByteRange{Length: n, Offset: o}
	}
	if a.err != nil {
		return a.err
	}
	p.mp = m
	return nil
}

// An attribute list (§4.2).

type attrValue struct {
	s      string
	quoted bool
}

// attrs is a parsed attribute list. Its typed getters return the zero
// value for an absent attribute and record the first problem in err.
type attrs struct {
	tag  string
	line int
	m    map[string]attrValue
	err  error
}

func (p *parser) attrs(tag, s string) (*attrs, error) {
	a := &attrs{tag: tag, line: p.line, m: make(map[string]attrValue)}
	i := 0
	for {
		i = skipBlanks(s, i)
		if i == len(s) {
			// An empty list, or a trailing comma: harmless.
			return a, nil
		}
		j := i
		for j < len(s) && isNameByte(s[j]) {
			j++
		}
		if j == i {
			return nil, p.errorf("%s: attribute name expected at %s", tag, short(s[i:]))
		}
		name := s[i:j]
		if j == len(s) || s[j] != '=' {
			return nil, p.errorf("%s: no '=' after %s", tag, short(name))
		}
		i = j + 1
		var v attrValue
		if i < len(s) && s[i] == '"' {
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				return nil, p.errorf("%s: %s: unterminated quoted string", tag, short(name))
			}
			v = attrValue{s: s[i+1 : i+1+end], quoted: true}
			i += end + 2
		} else {
			j = i
			for j < len(s) && s[j] != ',' && s[j] != '"' && s[j] != ' ' && s[j] != '\t' {
				j++
			}
			if j == i {
				return nil, p.errorf("%s: %s: missing value", tag, short(name))
			}
			v = attrValue{s: s[i:j]}
			i = j
		}
		if _, dup := a.m[name]; dup {
			return nil, p.errorf("%s: %s appears twice", tag, short(name))
		}
		a.m[name] = v
		i = skipBlanks(s, i)
		if i == len(s) {
			return a, nil
		}
		if s[i] != ',' {
			return nil, p.errorf("%s: %s: ',' expected at %s", tag, short(name), short(s[i:]))
		}
		i++
	}
}

func skipBlanks(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// isNameByte accepts the [A-Z0-9-] of §4.2 and, as some packagers write
// them, lower-case letters and underscores.
func isNameByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func (a *attrs) fail(name, format string, args ...any) {
	if a.err == nil {
		a.err = &SyntaxError{Line: a.line, Msg: a.tag + ": " + name + ": " + fmt.Sprintf(format, args...)}
	}
}

func (a *attrs) require(names ...string) {
	for _, n := range names {
		if !a.has(n) && a.err == nil {
			a.err = &SyntaxError{Line: a.line, Msg: a.tag + ": missing " + n}
		}
	}
}

func (a *attrs) has(name string) bool {
	_, ok := a.m[name]
	return ok
}

func (a *attrs) quoted(name string) string {
	v, ok := a.m[name]
	if ok && !v.quoted {
		a.fail(name, "want a quoted string, got %s", short(v.s))
	}
	return v.s
}

// enum returns an unquoted value: an enumerated string, or a number for
// the caller to parse.
func (a *attrs) enum(name string) string {
	v, ok := a.m[name]
	if ok && v.quoted {
		a.fail(name, "want an unquoted value, got %q", short(v.s))
		return ""
	}
	return v.s
}

func (a *attrs) int(name string) int64 {
	if !a.has(name) {
		return 0
	}
	n, err := parseDecInt(a.enum(name))
	if err != nil {
		a.fail(name, "%v", err)
	}
	return n
}

func (a *attrs) decFloat(name string) float64 {
	if !a.has(name) {
		return 0
	}
	f, err := parseDecFloat(a.enum(name))
	if err != nil {
		a.fail(name, "%v", err)
	}
	return f
}

func (a *attrs) signedFloat(name string) float64 {
	if !a.has(name) {
		return 0
	}
	s := a.enum(name)
	f, err := parseSeconds(strings.TrimPrefix(s, "-"))
	if err != nil {
		a.fail(name, "%v", err)
	}
	if strings.HasPrefix(s, "-") {
		f = -f
	}
	return f
}

func (a *attrs) resolution(name string) Resolution {
	if !a.has(name) {
		return Resolution{}
	}
	s := a.enum(name)
	w, h, ok := strings.Cut(s, "x")
	wn, err1 := parseDecInt(w)
	hn, err2 := parseDecInt(h)
	if !ok || err1 != nil || err2 != nil || wn > math.MaxInt32 || hn > math.MaxInt32 {
		a.fail(name, "want WIDTHxHEIGHT, got %s", short(s))
		return Resolution{}
	}
	return Resolution{Width: int(wn), Height: int(hn)}
}

func (a *attrs) yesNo(name string) bool {
	switch s := a.enum(name); s {
	case "YES":
		return true
	case "NO", "":
		return false
	default:
		a.fail(name, "want YES or NO, got %s", short(s))
		return false
	}
}

// Values (§4.2).

// parseDecInt reads a decimal-integer. RFC 8216 allows up to 2^64-1;
// values past 2^63-1 are refused rather than wrapped.
func parseDecInt(s string) (int64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("want a decimal integer, got %s", short(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is out of range", short(s))
	}
	return n, nil
}

// parseDecFloat reads a decimal-floating-point: digits and a point, no
// sign, exponent, NaN or Inf, which strconv.ParseFloat alone would take.
func parseDecFloat(s string) (float64, error) {
	if s == "" || strings.Trim(s, "0123456789.") != "" {
		return 0, fmt.Errorf("want a non-negative decimal number, got %s", short(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s is out of range", short(s))
	}
	if err != nil {
		return 0, fmt.Errorf("want a non-negative decimal number, got %s", short(s))
	}
	return f, nil
}

// parseSeconds reads a decimal-floating-point number of seconds, at most
// maxSeconds.
func parseSeconds(s string) (float64, error) {
	f, err := parseDecFloat(s)
	if err == nil && f > maxSeconds {
		err = fmt.Errorf("%s is out of range", short(s))
	}
	return f, err
}

// parseRange reads the <n>[@<o>] of EXT-X-BYTERANGE and of EXT-X-MAP's
// BYTERANGE (§4.3.2.2).
func parseRange(s string) (length, offset int64, hasOffset bool, err error) {
	ns, os, hasOffset := strings.Cut(s, "@")
	if length, err = parseDecInt(ns); err != nil {
		return 0, 0, false, fmt.Errorf("length: %v", err)
	}
	if hasOffset {
		if offset, err = parseDecInt(os); err != nil {
			return 0, 0, false, fmt.Errorf("offset: %v", err)
		}
		if offset > math.MaxInt64-length {
			return 0, 0, false, errors.New("range ends past 2^63")
		}
	}
	return length, offset, hasOffset, nil
}

// parseIV reads a hexadecimal-sequence of exactly 128 bits (§4.3.2.4).
func parseIV(v attrValue) ([]byte, error) {
	s := v.s
	if v.quoted || len(s) < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return nil, fmt.Errorf("want 0x and 32 hexadecimal digits, got %s", short(s))
	}
	if len(s) != 2+32 {
		return nil, fmt.Errorf("want 16 bytes, got %d hexadecimal digits", len(s)-2)
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return nil, fmt.Errorf("want 0x and 32 hexadecimal digits, got %s", short(s))
	}
	return b, nil
}

// parseTime reads an EXT-X-PROGRAM-DATE-TIME (RFC 3339, §4.3.2.6). A zone
// offset without a colon, as some encoders write it, is accepted too.
// The result is in UTC, and must stay within the years 0000 to 9999 that
// RFC 3339 can express.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		var err2 error
		if t, err2 = time.Parse("2006-01-02T15:04:05Z0700", s); err2 != nil {
			return time.Time{}, fmt.Errorf("want an RFC 3339 date and time, got %s", short(s))
		}
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("%s is out of range in UTC", short(s))
	}
	return t, nil
}

// short quotes s for an error message, cut to a readable length: values
// can be as long as a line.
func short(s string) string {
	const n = 40
	if len(s) > n {
		return strconv.Quote(s[:n]) + "..."
	}
	return strconv.Quote(s)
}
