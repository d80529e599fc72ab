package hls

import (
	"time"
)

// Playlist is a parsed playlist: a *Master or a *Media.
type Playlist interface {
	// Encode writes the playlist in the m3u8 format.
	Encode() []byte
	playlist()
}

// Master is a multivariant (master) playlist: the variant streams of one
// presentation and their renditions (RFC 8216 §4.3.4).
type Master struct {
	Version             int  // EXT-X-VERSION; 0 when absent
	IndependentSegments bool // EXT-X-INDEPENDENT-SEGMENTS
	Start               *Start
	Variants            []Variant   // EXT-X-STREAM-INF, in playlist order
	IFrameVariants      []Variant   // EXT-X-I-FRAME-STREAM-INF
	Renditions          []Rendition // EXT-X-MEDIA
	SessionKeys         []Key       // EXT-X-SESSION-KEY
}

// Variant is one variant stream (EXT-X-STREAM-INF and the URI after it,
// or EXT-X-I-FRAME-STREAM-INF with its URI attribute).
type Variant struct {
	URI              string
	Bandwidth        int64 // bits per second, peak
	AverageBandwidth int64
	Codecs           string
	Resolution       Resolution
	FrameRate        float64
	HDCPLevel        string
	// Group IDs of the renditions that go with the variant.
	Audio, Video, Subtitles string
	// ClosedCaptions is a group ID, or "NONE".
	ClosedCaptions string
}

// Resolution is a video's size in pixels; zero when not given.
type Resolution struct{ Width, Height int }

// Rendition is an alternative rendition (EXT-X-MEDIA): an audio track, a
// video angle, subtitles or closed captions.
type Rendition struct {
	Type            string // AUDIO, VIDEO, SUBTITLES or CLOSED-CAPTIONS
	GroupID         string
	Name            string
	URI             string // empty when the rendition is in the variant's own stream
	Language        string
	AssocLanguage   string
	Default         bool
	Autoselect      bool
	Forced          bool
	InstreamID      string
	Characteristics string
	Channels        string
}

// Start is EXT-X-START: where playback should begin.
type Start struct {
	TimeOffset float64 // seconds; negative counts from the end
	Precise    bool
}

// Media is a media playlist: a list of media segments (RFC 8216 §4.3.3).
type Media struct {
	Version               int
	TargetDuration        int // EXT-X-TARGETDURATION, whole seconds
	MediaSequence         int64
	DiscontinuitySequence int64
	PlaylistType          string // "VOD", "EVENT", or empty
	EndList               bool   // EXT-X-ENDLIST: no segment will be added
	IFramesOnly           bool
	IndependentSegments   bool
	Start                 *Start
	Segments              []Segment
}

// Seq returns the media sequence number of Segments[i].
func (m *Media) Seq(i int) int64 { return m.MediaSequence + int64(i) }

// Segment is one media segment with the tags that apply to it.
type Segment struct {
	URI      string
	Duration float64 // EXTINF, seconds
	Title    string  // EXTINF's title, after the comma
	// ByteRange, when set, limits the segment to part of the resource.
	// Its offset is always resolved: a range given without one continues
	// the previous segment's.
	ByteRange *ByteRange
	// Discontinuity marks a change of encoding before this segment.
	Discontinuity bool
	// Key is the encryption in effect for the segment; nil when none
	// (no EXT-X-KEY, or METHOD=NONE).
	Key *Key
	// Map is the media initialization section in effect; nil when none.
	Map             *Map
	ProgramDateTime time.Time // zero when absent
	Gap             bool      // EXT-X-GAP: the segment is missing on purpose
	Bitrate         int64     // EXT-X-BITRATE, kbit/s; 0 when absent
}

// ByteRange is Length bytes starting at Offset.
type ByteRange struct {
	Length, Offset int64
}

// Key is an EXT-X-KEY (or EXT-X-SESSION-KEY) of a method other than NONE.
type Key struct {
	Method            string // AES-128, SAMPLE-AES, ...
	URI               string
	IV                []byte // 16 bytes, or nil when absent
	KeyFormat         string // empty means "identity"
	KeyFormatVersions string
}

// Map is an EXT-X-MAP: the initialization section segments need.
type Map struct {
	URI       string
	ByteRange *ByteRange
	// Key is the encryption in effect where the map appears; nil when
	// none. An AES-128 encrypted map needs the key's IV.
	Key *Key
}

func (*Master) playlist() {}
func (*Media) playlist()  {}
