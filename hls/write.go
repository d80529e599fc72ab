package hls

import (
	"bytes"
	"encoding/hex"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Encode writes the master playlist: the header tags, EXT-X-SESSION-KEY,
// EXT-X-MEDIA, each EXT-X-STREAM-INF with its URI line, then
// EXT-X-I-FRAME-STREAM-INF. EXT-X-VERSION is written only when Version is
// set.
//
// As in Media.Encode, values that cannot be written are changed or left out
// rather than allowed to break the playlist (see there). Besides, a
// rendition whose Type is not one of the four of RFC 8216 §4.3.4.1 is left
// out, as is a session key whose Method is empty or NONE, and the URI of a
// CLOSED-CAPTIONS rendition; FRAME-RATE, AUDIO, SUBTITLES and
// CLOSED-CAPTIONS are not written for I-frame variants, which do not have
// them (§4.3.4.3). A Master with no variant, rendition or session key comes
// out as a bare #EXTM3U, which Parse refuses.
func (m *Master) Encode() []byte {
	var e encoder
	e.line("#EXTM3U")
	if m.Version > 0 {
		e.tagInt("EXT-X-VERSION", int64(m.Version))
	}
	e.header(m.IndependentSegments, m.Start)
	for i := range m.SessionKeys {
		if k := effectiveKey(&m.SessionKeys[i]); k != nil {
			e.key("EXT-X-SESSION-KEY", k)
		}
	}
	for i := range m.Renditions {
		e.rendition(&m.Renditions[i])
	}
	for i := range m.Variants {
		e.variant("EXT-X-STREAM-INF", &m.Variants[i])
		e.uriLine(m.Variants[i].URI)
	}
	for i := range m.IFrameVariants {
		e.variant("EXT-X-I-FRAME-STREAM-INF", &m.IFrameVariants[i])
	}
	return e.b
}

// WriteTo writes Encode's output to w.
func (m *Master) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(m.Encode())
	return int64(n), err
}

// Encode writes the media playlist. EXT-X-VERSION is written only when
// Version is set; EXT-X-TARGETDURATION and EXT-X-MEDIA-SEQUENCE always,
// EXT-X-DISCONTINUITY-SEQUENCE when not 0, EXT-X-PLAYLIST-TYPE when VOD or
// EVENT.
//
// Segment tags are written as a parser needs them: EXT-X-KEY when the key
// differs from the previous segment's (METHOD=NONE when it goes away),
// EXT-X-MAP when the map differs, EXT-X-BITRATE when the bitrate does. Keys
// and maps are compared by value, not by pointer. A segment whose Map is
// nil after one with a map keeps that map: HLS cannot end one. Byte ranges
// always carry their offset, and durations are written with as many digits
// as it takes to read back the same float64.
//
// Values that a parsed playlist cannot hold are changed rather than allowed
// to break the playlist: CR and LF are dropped from every string, double
// quotes from quoted strings, commas and blanks from enumerated strings;
// blanks around URIs and at the end of titles are trimmed, a URI line
// starting with '#' gets it percent-encoded and an empty one is written as
// "."; negative or non-finite numbers become 0, and are left out where
// optional; an IV shorter than 16 bytes is padded with leading zeros and a
// longer one is left out; a Key whose Method is empty or NONE means no key.
// Program date-times are written in UTC, with milliseconds (or more digits
// if the time has them), and only for years 0000 to 9999.
func (m *Media) Encode() []byte {
	var e encoder
	e.line("#EXTM3U")
	if m.Version > 0 {
		e.tagInt("EXT-X-VERSION", int64(m.Version))
	}
	e.tagInt("EXT-X-TARGETDURATION", int64(m.TargetDuration))
	e.tagInt("EXT-X-MEDIA-SEQUENCE", m.MediaSequence)
	if m.DiscontinuitySequence > 0 {
		e.tagInt("EXT-X-DISCONTINUITY-SEQUENCE", m.DiscontinuitySequence)
	}
	if m.PlaylistType == "VOD" || m.PlaylistType == "EVENT" {
		e.line("#EXT-X-PLAYLIST-TYPE:" + m.PlaylistType)
	}
	if m.IFramesOnly {
		e.line("#EXT-X-I-FRAMES-ONLY")
	}
	e.header(m.IndependentSegments, m.Start)

	// What a parser reading the output so far has in effect.
	var (
		key     *Key
		mp      *Map
		bitrate int64
	)
	for i := range m.Segments {
		s := &m.Segments[i]
		if s.Discontinuity {
			e.line("#EXT-X-DISCONTINUITY")
		}
		if s.Map != nil && !mapEqual(s.Map, mp) {
			// The map takes the key in effect where it appears
			// (§4.3.2.5), which may differ from the segment's.
			if mk := effectiveKey(s.Map.Key); !keyEqual(mk, key) {
				e.key("EXT-X-KEY", mk)
				key = mk
			}
			e.tag("EXT-X-MAP")
			e.quoted("URI", s.Map.URI)
			if br := s.Map.ByteRange; br != nil {
				e.name("BYTERANGE")
				e.b = append(e.b, '"')
				e.byteRange(br)
				e.b = append(e.b, '"')
			}
			e.end()
			mp = s.Map
		}
		if k := effectiveKey(s.Key); !keyEqual(k, key) {
			e.key("EXT-X-KEY", k)
			key = k
		}
		if t := s.ProgramDateTime; !t.IsZero() {
			e.time(t)
		}
		if s.Gap {
			e.line("#EXT-X-GAP")
		}
		if b := max(s.Bitrate, 0); b != bitrate {
			e.tagInt("EXT-X-BITRATE", b)
			bitrate = b
		}
		if s.ByteRange != nil {
			e.b = append(e.b, "#EXT-X-BYTERANGE:"...)
			e.byteRange(s.ByteRange)
			e.end()
		}
		e.b = append(e.b, "#EXTINF:"...)
		e.b = appendFloat(e.b, s.Duration)
		e.b = append(e.b, ',')
		e.b = append(e.b, strings.TrimRight(clean(s.Title, "\r\n"), " \t")...)
		e.end()
		e.uriLine(s.URI)
	}
	if m.EndList {
		e.line("#EXT-X-ENDLIST")
	}
	return e.b
}

// WriteTo writes Encode's output to w.
func (m *Media) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(m.Encode())
	return int64(n), err
}

// encoder appends playlist lines to b.
type encoder struct {
	b     []byte
	attrs int // attributes written on the current tag line
}

func (e *encoder) line(s string) {
	e.b = append(e.b, s...)
	e.b = append(e.b, '\n')
}

func (e *encoder) tagInt(tag string, v int64) {
	e.b = append(e.b, '#')
	e.b = append(e.b, tag...)
	e.b = append(e.b, ':')
	e.b = strconv.AppendInt(e.b, max(v, 0), 10)
	e.b = append(e.b, '\n')
}

// header writes the tags other than EXT-X-VERSION that both kinds of
// playlist may have.
func (e *encoder) header(independent bool, start *Start) {
	if independent {
		e.line("#EXT-X-INDEPENDENT-SEGMENTS")
	}
	if start != nil && !math.IsNaN(start.TimeOffset) && !math.IsInf(start.TimeOffset, 0) {
		e.tag("EXT-X-START")
		e.name("TIME-OFFSET")
		if start.TimeOffset < 0 {
			e.b = append(e.b, '-')
		}
		e.b = appendFloat(e.b, math.Abs(start.TimeOffset))
		if start.Precise {
			e.enum("PRECISE", "YES")
		}
		e.end()
	}
}

// tag starts a tag line with an attribute list; end finishes it.
func (e *encoder) tag(name string) {
	e.b = append(e.b, '#')
	e.b = append(e.b, name...)
	e.b = append(e.b, ':')
	e.attrs = 0
}

func (e *encoder) end() { e.b = append(e.b, '\n') }

func (e *encoder) name(n string) {
	if e.attrs > 0 {
		e.b = append(e.b, ',')
	}
	e.attrs++
	e.b = append(e.b, n...)
	e.b = append(e.b, '=')
}

func (e *encoder) quoted(n, v string) {
	e.name(n)
	e.b = append(e.b, '"')
	e.b = append(e.b, clean(v, "\"\r\n")...)
	e.b = append(e.b, '"')
}

// optQuoted writes a quoted string unless it is empty, which for the
// optional attributes it is used for means absent.
func (e *encoder) optQuoted(n, v string) {
	if v != "" {
		e.quoted(n, v)
	}
}

// enum writes an enumerated string (§4.2), which cannot hold quotes,
// commas or whitespace; it leaves out a value with nothing else.
func (e *encoder) enum(n, v string) {
	if v = cleanEnum(v); v != "" {
		e.name(n)
		e.b = append(e.b, v...)
	}
}

func (e *encoder) yesNo(n string, v bool) {
	if v {
		e.enum(n, "YES")
	} else {
		e.enum(n, "NO")
	}
}

func (e *encoder) int(n string, v int64) {
	e.name(n)
	e.b = strconv.AppendInt(e.b, max(v, 0), 10)
}

func (e *encoder) byteRange(br *ByteRange) {
	n, o := max(br.Length, 0), max(br.Offset, 0)
	o = min(o, math.MaxInt64-n) // so that the range ends before 2^63, as Parse wants
	e.b = strconv.AppendInt(e.b, n, 10)
	e.b = append(e.b, '@')
	e.b = strconv.AppendInt(e.b, o, 10)
}

func (e *encoder) uriLine(uri string) {
	uri = strings.Trim(clean(uri, "\r\n"), " \t")
	switch {
	case uri == "":
		// A blank line is no URI line (§4.1); "." at least resolves.
		uri = "."
	case uri[0] == '#':
		// Otherwise the line would be a comment or a tag.
		uri = "%23" + uri[1:]
	}
	e.line(uri)
}

func (e *encoder) time(t time.Time) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return
	}
	layout := "2006-01-02T15:04:05.000Z07:00"
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		layout = time.RFC3339Nano
	}
	e.b = append(e.b, "#EXT-X-PROGRAM-DATE-TIME:"...)
	e.b = t.AppendFormat(e.b, layout)
	e.end()
}

func (e *encoder) key(tag string, k *Key) {
	e.tag(tag)
	if k == nil {
		e.enum("METHOD", "NONE")
		e.end()
		return
	}
	e.enum("METHOD", k.Method)
	e.quoted("URI", k.URI)
	if iv := k.IV; len(iv) > 0 && len(iv) <= 16 {
		// The IV is a 128-bit number (§5.2): leading zeros keep its value.
		e.name("IV")
		e.b = append(e.b, "0x"...)
		e.b = append(e.b, strings.Repeat("00", 16-len(iv))...)
		e.b = hex.AppendEncode(e.b, iv)
	}
	e.optQuoted("KEYFORMAT", k.KeyFormat)
	e.optQuoted("KEYFORMATVERSIONS", k.KeyFormatVersions)
	e.end()
}

func (e *encoder) rendition(r *Rendition) {
	switch r.Type {
	case "AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS":
	default:
		return // Parse would refuse it.
	}
	e.tag("EXT-X-MEDIA")
	e.enum("TYPE", r.Type)
	e.quoted("GROUP-ID", r.GroupID)
	e.quoted("NAME", r.Name)
	e.optQuoted("LANGUAGE", r.Language)
	e.optQuoted("ASSOC-LANGUAGE", r.AssocLanguage)
	e.yesNo("DEFAULT", r.Default)
	e.yesNo("AUTOSELECT", r.Autoselect)
	if r.Forced {
		e.enum("FORCED", "YES")
	}
	e.optQuoted("INSTREAM-ID", r.InstreamID)
	e.optQuoted("CHARACTERISTICS", r.Characteristics)
	e.optQuoted("CHANNELS", r.Channels)
	if r.Type != "CLOSED-CAPTIONS" { // §4.3.4.1: captions have no URI
		e.optQuoted("URI", r.URI)
	}
	e.end()
}

// variant writes the attributes of EXT-X-STREAM-INF or, with the URI and
// without the attributes it does not have, EXT-X-I-FRAME-STREAM-INF.
func (e *encoder) variant(tag string, v *Variant) {
	iframe := tag == "EXT-X-I-FRAME-STREAM-INF"
	e.tag(tag)
	e.int("BANDWIDTH", v.Bandwidth)
	if v.AverageBandwidth > 0 {
		e.int("AVERAGE-BANDWIDTH", v.AverageBandwidth)
	}
	e.optQuoted("CODECS", v.Codecs)
	if r := v.Resolution; r.Width != 0 || r.Height != 0 {
		e.name("RESOLUTION")
		e.b = strconv.AppendInt(e.b, int64(max(r.Width, 0)), 10)
		e.b = append(e.b, 'x')
		e.b = strconv.AppendInt(e.b, int64(max(r.Height, 0)), 10)
	}
	if !iframe && v.FrameRate > 0 && !math.IsInf(v.FrameRate, 0) {
		e.name("FRAME-RATE")
		e.b = appendFloat(e.b, v.FrameRate)
	}
	e.enum("HDCP-LEVEL", v.HDCPLevel)
	if !iframe {
		e.optQuoted("AUDIO", v.Audio)
	}
	e.optQuoted("VIDEO", v.Video)
	if !iframe {
		e.optQuoted("SUBTITLES", v.Subtitles)
		switch v.ClosedCaptions {
		case "":
		case "NONE":
			e.enum("CLOSED-CAPTIONS", "NONE")
		default:
			e.quoted("CLOSED-CAPTIONS", v.ClosedCaptions)
		}
	}
	if iframe {
		e.quoted("URI", v.URI)
	}
	e.end()
}

// appendFloat writes a decimal-floating-point that reads back as the same
// float64; what is not a non-negative finite number becomes 0.
func appendFloat(b []byte, f float64) []byte {
	if !(f >= 0) || math.IsInf(f, 0) {
		f = 0
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// effectiveKey returns k, or nil when k stands for no encryption.
func effectiveKey(k *Key) *Key {
	if k == nil {
		return nil
	}
	if m := cleanEnum(k.Method); m == "" || m == "NONE" {
		return nil
	}
	return k
}

func keyEqual(a, b *Key) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Method == b.Method && a.URI == b.URI && bytes.Equal(a.IV, b.IV) &&
		a.KeyFormat == b.KeyFormat && a.KeyFormatVersions == b.KeyFormatVersions
}

func mapEqual(a, b *Map) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.URI == b.URI && rangeEqual(a.ByteRange, b.ByteRange) &&
		keyEqual(effectiveKey(a.Key), effectiveKey(b.Key))
}

func rangeEqual(a, b *ByteRange) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func cleanEnum(s string) string { return clean(s, "\",\r\n \t") }

// clean returns s without the bytes in drop, all ASCII. It works on bytes
// so that it leaves invalid UTF-8 alone.
func clean(s, drop string) string {
	if !strings.ContainsAny(s, drop) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(drop, s[i]) < 0 {
			b = append(b, s[i])
		}
	}
	return string(b)
}
