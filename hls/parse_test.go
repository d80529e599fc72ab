package hls

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// Playlists as packagers write them. The fuzz test is seeded with them too.
const (
	ffmpegVOD = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:10
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:10.000000,
out0.ts
#EXTINF:10.000000,
out1.ts
#EXTINF:4.520000,
out2.ts
#EXT-X-ENDLIST
`

	aesRotation = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:7
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example.com/k1",IV=0x0123456789ABCDEF0123456789abcdef
#EXTINF:6.006,
seg7.ts
#EXTINF:6.006,
seg8.ts
#EXT-X-KEY:METHOD=AES-128,URI="k2.key"
#EXTINF:6.006,
seg9.ts
#EXT-X-KEY:METHOD=NONE
#EXTINF:3.003,
seg10.ts
#EXT-X-ENDLIST
`

	// ffmpeg -hls_flags single_file.
	singleFile = `#EXTM3U
#EXT-X-VERSION:4
#EXT-X-TARGETDURATION:10
#EXT-X-MEDIA-SEQUENCE:0
#EXTINF:10.000000,
#EXT-X-BYTERANGE:1128260@0
out.ts
#EXTINF:10.000000,
#EXT-X-BYTERANGE:1017108@1128260
out.ts
#EXTINF:3.280000,
#EXT-X-BYTERANGE:338556@2145368
out.ts
#EXT-X-ENDLIST
`

	// Ranges that continue the previous one (RFC 8216 §4.3.2.2).
	rangesNoOffset = `#EXTM3U
#EXT-X-VERSION:4
#EXT-X-TARGETDURATION:10
#EXT-X-BYTERANGE:1000@376
#EXTINF:10,
all.ts
#EXT-X-BYTERANGE:2000
#EXTINF:10,
all.ts
#EXT-X-BYTERANGE:500
#EXTINF:5,
all.ts
#EXT-X-ENDLIST
`

	fmp4 = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.000000,
seg1.m4s
#EXTINF:4.000000,
seg2.m4s
#EXTINF:1.5,
seg3.m4s
#EXT-X-ENDLIST
`

	// fMP4 in one file, encrypted: the key comes before the map, so it
	// applies to the map too.
	fmp4SingleFile = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:5
#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://k",IV=0x000102030405060708090A0B0C0D0E0F,KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"
#EXT-X-MAP:URI="main.mp4",BYTERANGE="720@0"
#EXTINF:4.004,
#EXT-X-BYTERANGE:300000@720
main.mp4
#EXTINF:4.004,
#EXT-X-BYTERANGE:280000
main.mp4
#EXT-X-MAP:URI="main2.mp4",BYTERANGE="800"
#EXTINF:2.002,
#EXT-X-BYTERANGE:100000@800
main2.mp4
#EXT-X-ENDLIST
`

	discontinuities = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:10
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-PROGRAM-DATE-TIME:2024-03-01T12:00:00.000Z
#EXTINF:10,
a.ts
#EXTINF:10,
b.ts
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2024-03-01T13:00:20.5+01:00
#EXTINF:9.5,Ad break, part 1
ad0.ts
#EXT-X-GAP
#EXTINF:10,
ad1.ts
#EXT-X-DISCONTINUITY
#EXT-X-BITRATE:1500
#EXTINF:10,
c.ts
#EXTINF:10,
d.ts
#EXT-X-ENDLIST
`

	live = `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:8
#EXT-X-MEDIA-SEQUENCE:2680

#EXTINF:7.975,
https://priv.example.com/fileSequence2680.ts
#EXTINF:7.941,
https://priv.example.com/fileSequence2681.ts
#EXTINF:7.975,
https://priv.example.com/fileSequence2682.ts
`

	master = `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
# A comment, then tags this package does not model.
#EXT-X-SESSION-DATA:DATA-ID="com.example.title",VALUE="Example"
#EXT-X-CONTENT-STEERING:SERVER-URI="/steering"
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://key1",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"
#EXT-X-START:TIME-OFFSET=-12.5,PRECISE=YES
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/en/index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Français",LANGUAGE="fr",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="audio/fr/index.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",AUTOSELECT=YES,FORCED=NO,CHARACTERISTICS="public.accessibility.transcribes-spoken-dialog,public.easy-to-read",URI="subs/en/index.m3u8"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="English CC",INSTREAM-ID="CC1",LANGUAGE="en"
#EXT-X-STREAM-INF:BANDWIDTH=2483789,AVERAGE-BANDWIDTH=2000000,CODECS="avc1.640020,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO="aac",SUBTITLES="subs",CLOSED-CAPTIONS="cc",VIDEO-RANGE=SDR
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=25,HDCP-LEVEL=NONE,AUDIO="aac",SUBTITLES="subs",CLOSED-CAPTIONS=NONE

# The URI line may come after blank lines and comments.
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="mp4a.40.2",AUDIO="aac"
audio-only.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=186522,CODECS="avc1.640020",RESOLUTION=1280x720,URI="720p/iframes.m3u8"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=61000,CODECS="avc1.4d401e",RESOLUTION=640x360,VIDEO="v",URI="360p/iframes.m3u8"
`
)

// samples are the valid playlists of the tests, by name.
var samples = map[string]string{
	"ffmpegVOD":       ffmpegVOD,
	"aesRotation":     aesRotation,
	"singleFile":      singleFile,
	"rangesNoOffset":  rangesNoOffset,
	"fmp4":            fmp4,
	"fmp4SingleFile":  fmp4SingleFile,
	"discontinuities": discontinuities,
	"live":            live,
	"master":          master,
	"crlf":            strings.ReplaceAll(ffmpegVOD, "\n", "\r\n"),
	"bom":             "\uFEFF" + ffmpegVOD,
}

func mustParse(t testing.TB, s string) Playlist {
	t.Helper()
	pl, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, s)
	}
	return pl
}

func mustParseMedia(t testing.TB, s string) *Media {
	t.Helper()
	m, ok := mustParse(t, s).(*Media)
	if !ok {
		t.Fatalf("not a media playlist:\n%s", s)
	}
	return m
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParseMedia(t *testing.T) {
	vod := &Media{
		Version:        3,
		TargetDuration: 10,
		PlaylistType:   "VOD",
		EndList:        true,
		Segments: []Segment{
			{URI: "out0.ts", Duration: 10},
			{URI: "out1.ts", Duration: 10},
			{URI: "out2.ts", Duration: 4.52},
		},
	}
	k1 := &Key{Method: "AES-128", URI: "https://keys.example.com/k1", IV: []byte{
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}}
	k2 := &Key{Method: "AES-128", URI: "k2.key"}
	sk := &Key{Method: "SAMPLE-AES", URI: "skd://k", IV: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		KeyFormat: "com.apple.streamingkeydelivery", KeyFormatVersions: "1"}
	init1 := &Map{URI: "init.mp4"}
	main1 := &Map{URI: "main.mp4", ByteRange: &ByteRange{Length: 720}, Key: sk}
	main2 := &Map{URI: "main2.mp4", ByteRange: &ByteRange{Length: 800}, Key: sk}

	tests := []struct {
		name, in string
		want     *Media
	}{
		{"ffmpegVOD", ffmpegVOD, vod},
		{"crlf", samples["crlf"], vod},
		{"bom", samples["bom"], vod},
		{"aesRotation", aesRotation, &Media{
			Version: 3, TargetDuration: 7, MediaSequence: 7, EndList: true,
			Segments: []Segment{
				{URI: "seg7.ts", Duration: 6.006, Key: k1},
				{URI: "seg8.ts", Duration: 6.006, Key: k1},
				{URI: "seg9.ts", Duration: 6.006, Key: k2},
				{URI: "seg10.ts", Duration: 3.003},
			},
		}},
		{"singleFile", singleFile, &Media{
			Version: 4, TargetDuration: 10, EndList: true,
			Segments: []Segment{
				{URI: "out.ts", Duration: 10, ByteRange: &ByteRange{Length: 1128260, Offset: 0}},
				{URI: "out.ts", Duration: 10, ByteRange: &ByteRange{Length: 1017108, Offset: 1128260}},
				{URI: "out.ts", Duration: 3.28, ByteRange: &ByteRange{Length: 338556, Offset: 2145368}},
			},
		}},
		{"rangesNoOffset", rangesNoOffset, &Media{
			Version: 4, TargetDuration: 10, EndList: true,
			Segments: []Segment{
				{URI: "all.ts", Duration: 10, ByteRange: &ByteRange{Length: 1000, Offset: 376}},
				{URI: "all.ts", Duration: 10, ByteRange: &ByteRange{Length: 2000, Offset: 1376}},
				{URI: "all.ts", Duration: 5, ByteRange: &ByteRange{Length: 500, Offset: 3376}},
			},
		}},
		{"fmp4", fmp4, &Media{
			Version: 7, TargetDuration: 4, MediaSequence: 1, PlaylistType: "VOD", EndList: true,
			IndependentSegments: true,
			Segments: []Segment{
				{URI: "seg1.m4s", Duration: 4, Map: init1},
				{URI: "seg2.m4s", Duration: 4, Map: init1},
				{URI: "seg3.m4s", Duration: 1.5, Map: init1},
			},
		}},
		{"fmp4SingleFile", fmp4SingleFile, &Media{
			Version: 7, TargetDuration: 5, EndList: true,
			Segments: []Segment{
				{URI: "main.mp4", Duration: 4.004, Key: sk, Map: main1, ByteRange: &ByteRange{Length: 300000, Offset: 720}},
				{URI: "main.mp4", Duration: 4.004, Key: sk, Map: main1, ByteRange: &ByteRange{Length: 280000, Offset: 300720}},
				{URI: "main2.mp4", Duration: 2.002, Key: sk, Map: main2, ByteRange: &ByteRange{Length: 100000, Offset: 800}},
			},
		}},
		{"discontinuities", discontinuities, &Media{
			Version: 3, TargetDuration: 10, DiscontinuitySequence: 2, EndList: true,
			Segments: []Segment{
				{URI: "a.ts", Duration: 10, ProgramDateTime: date("2024-03-01T12:00:00Z")},
				{URI: "b.ts", Duration: 10},
				{URI: "ad0.ts", Duration: 9.5, Title: "Ad break, part 1", Discontinuity: true,
					ProgramDateTime: date("2024-03-01T12:00:20.5Z")},
				{URI: "ad1.ts", Duration: 10, Gap: true},
				{URI: "c.ts", Duration: 10, Discontinuity: true, Bitrate: 1500},
				{URI: "d.ts", Duration: 10, Bitrate: 1500},
			},
		}},
		{"live", live, &Media{
			Version: 3, TargetDuration: 8, MediaSequence: 2680,
			Segments: []Segment{
				{URI: "https://priv.example.com/fileSequence2680.ts", Duration: 7.975},
				{URI: "https://priv.example.com/fileSequence2681.ts", Duration: 7.941},
				{URI: "https://priv.example.com/fileSequence2682.ts", Duration: 7.975},
			},
		}},
		{"emptyLive", "#EXTM3U\n#EXT-X-TARGETDURATION:6\n", &Media{TargetDuration: 6}},
		{"lenient", "#EXTM3U\r\n  #EXT-X-TARGETDURATION:6 \n#EXTINF:5\nno-comma.ts\t\n" +
			"#EXT-X-KEY:METHOD=AES-128, URI=\"k\" ,\n#EXTINF:5,\nx.ts\n# EXT-X-ENDLIST is not a tag here\n" +
			"#EXT-X-UNKNOWN:whatever=\"\n#EXT-X-PROGRAM-DATE-TIME:2024-03-01T12:00:00.123+0100\n" +
			"#EXTINF:0.5,\ny.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-KEY:METHOD=NONE\n", &Media{
			TargetDuration: 6,
			Segments: []Segment{
				{URI: "no-comma.ts", Duration: 5},
				{URI: "x.ts", Duration: 5, Key: &Key{Method: "AES-128", URI: "k"}},
				{URI: "y.ts", Duration: 0.5, Key: &Key{Method: "AES-128", URI: "k"},
					ProgramDateTime: date("2024-03-01T11:00:00.123Z")},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMedia(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", dump(got), dump(tt.want))
			}
		})
	}
}

// The segments under one EXT-X-KEY or EXT-X-MAP share one *Key or *Map, so
// that a reader can tell where they change.
func TestParseSharesKeyAndMap(t *testing.T) {
	m := mustParseMedia(t, aesRotation)
	s := m.Segments
	if s[0].Key != s[1].Key || s[1].Key == s[2].Key {
		t.Errorf("keys not shared as declared: %p %p %p", s[0].Key, s[1].Key, s[2].Key)
	}
	if m.Seq(3) != 10 {
		t.Errorf("Seq(3) = %d, want 10", m.Seq(3))
	}

	m = mustParseMedia(t, fmp4SingleFile)
	s = m.Segments
	if s[0].Map != s[1].Map || s[1].Map == s[2].Map || s[0].Map.Key != s[0].Key {
		t.Errorf("maps not shared as declared: %p %p %p", s[0].Map, s[1].Map, s[2].Map)
	}

	// The map takes the key in effect where it appears, not the
	// segment's.
	m = mustParseMedia(t, `#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-MAP:URI="init.mp4"
#EXT-X-KEY:METHOD=AES-128,URI="k"
#EXTINF:4,
s1.m4s
`)
	if s := m.Segments[0]; s.Map.Key != nil || s.Key == nil {
		t.Errorf("map key %v, segment key %v; want nil and k", s.Map.Key, s.Key)
	}
}

func TestParseMaster(t *testing.T) {
	want := &Master{
		Version:             6,
		IndependentSegments: true,
		Start:               &Start{TimeOffset: -12.5, Precise: true},
		SessionKeys: []Key{{Method: "SAMPLE-AES", URI: "skd://key1",
			KeyFormat: "com.apple.streamingkeydelivery", KeyFormatVersions: "1"}},
		Renditions: []Rendition{
			{Type: "AUDIO", GroupID: "aac", Name: "English", Language: "en", Default: true, Autoselect: true,
				Channels: "2", URI: "audio/en/index.m3u8"},
			{Type: "AUDIO", GroupID: "aac", Name: "Français", Language: "fr", Autoselect: true,
				Channels: "2", URI: "audio/fr/index.m3u8"},
			{Type: "SUBTITLES", GroupID: "subs", Name: "English", Language: "en", Autoselect: true,
				Characteristics: "public.accessibility.transcribes-spoken-dialog,public.easy-to-read",
				URI:             "subs/en/index.m3u8"},
			{Type: "CLOSED-CAPTIONS", GroupID: "cc", Name: "English CC", InstreamID: "CC1", Language: "en"},
		},
		Variants: []Variant{
			{URI: "720p/index.m3u8", Bandwidth: 2483789, AverageBandwidth: 2000000,
				Codecs: "avc1.640020,mp4a.40.2", Resolution: Resolution{1280, 720}, FrameRate: 29.97,
				Audio: "aac", Subtitles: "subs", ClosedCaptions: "cc"},
			{URI: "360p/index.m3u8", Bandwidth: 800000, Codecs: "avc1.4d401e,mp4a.40.2",
				Resolution: Resolution{640, 360}, FrameRate: 25, HDCPLevel: "NONE",
				Audio: "aac", Subtitles: "subs", ClosedCaptions: "NONE"},
			{URI: "audio-only.m3u8", Bandwidth: 64000, Codecs: "mp4a.40.2", Audio: "aac"},
		},
		IFrameVariants: []Variant{
			{URI: "720p/iframes.m3u8", Bandwidth: 186522, Codecs: "avc1.640020", Resolution: Resolution{1280, 720}},
			{URI: "360p/iframes.m3u8", Bandwidth: 61000, Codecs: "avc1.4d401e", Resolution: Resolution{640, 360}, Video: "v"},
		},
	}
	got, err := ParseMaster(strings.NewReader(master))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", dump(got), dump(want))
	}
}

func TestParseWrongKind(t *testing.T) {
	if _, err := ParseMaster(strings.NewReader(ffmpegVOD)); !errors.Is(err, ErrNotMaster) {
		t.Errorf("ParseMaster(media) = %v, want ErrNotMaster", err)
	}
	if _, err := ParseMedia(strings.NewReader(master)); !errors.Is(err, ErrNotMedia) {
		t.Errorf("ParseMedia(master) = %v, want ErrNotMedia", err)
	}
	// A syntax error comes first.
	var se *SyntaxError
	if _, err := ParseMaster(strings.NewReader("#EXTM3U\n#EXTINF:x,\n")); !errors.As(err, &se) {
		t.Errorf("ParseMaster(bad) = %v, want a *SyntaxError", err)
	}
}

// Playlist beginnings for errorCases: lines 1 and 2 of a media playlist,
// lines 1 to 3 of a master playlist.
const (
	head  = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n"
	mhead = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"
)

// errorCases are invalid playlists, with the line and a part of the message
// of the *SyntaxError that Parse must return.
var errorCases = []struct {
	name, in string
	line     int
	msg      string
}{
	{"empty", "", 1, "no #EXTM3U"},
	{"noEXTM3U", "#EXT-X-TARGETDURATION:10\n#EXTINF:1,\na.ts\n", 1, "not #EXTM3U"},
	{"blankFirst", "\n#EXTM3U\n", 1, "not #EXTM3U"},
	{"onlyEXTM3U", "#EXTM3U\n", 0, "neither"},
	{"uriWithoutExtinf", head + "#EXTINF:1,\na.ts\nb.ts\n", 5, "without EXTINF"},
	{"uriFirst", "#EXTM3U\na.ts\n", 2, "without EXTINF"},
	{"extinfAtEnd", head + "#EXTINF:1,\na.ts\n#EXTINF:2,\n\n# comment\n", 5, "EXTINF without a segment URI"},
	{"extinfTwice", head + "#EXTINF:1,\n#EXTINF:2,\na.ts\n", 4, "EXTINF after the EXTINF on line 3"},
	{"byterangeAtEnd", head + "#EXT-X-BYTERANGE:10@0\n", 3, "without a segment URI"},
	{"noTargetDuration", "#EXTM3U\n#EXTINF:1,\na.ts\n", 0, "without EXT-X-TARGETDURATION"},
	{"targetDurationFloat", "#EXTM3U\n#EXT-X-TARGETDURATION:9.5\n", 2, "decimal integer"},
	{"targetDurationTwice", head + "#EXT-X-TARGETDURATION:10\n", 3, "more than one"},
	{"versionTwice", "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-VERSION:3\n", 3, "more than one EXT-X-VERSION"},
	{"mediaSequenceLate", head + "#EXTINF:1,\na.ts\n#EXT-X-MEDIA-SEQUENCE:5\n", 5, "after the first segment"},
	{"negativeDuration", head + "#EXTINF:-1,\na.ts\n", 3, "negative duration"},
	{"nanDuration", head + "#EXTINF:NaN,\na.ts\n", 3, "non-negative decimal"},
	{"infDuration", head + "#EXTINF:Inf,\na.ts\n", 3, "non-negative decimal"},
	{"exponentDuration", head + "#EXTINF:1e3,\na.ts\n", 3, "non-negative decimal"},
	{"hugeDuration", head + "#EXTINF:1" + strings.Repeat("0", 400) + ",\na.ts\n", 3, "out of range"},
	{"hugeSequence", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:9223372036854775808\n", 2, "out of range"},
	{"hugeTarget", "#EXTM3U\n#EXT-X-TARGETDURATION:99999999999\n", 2, "out of range"},
	{"negativeSequence", "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n", 2, "decimal integer"},
	{"hugeBandwidth", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=18446744073709551615\nv.m3u8\n", 2, "out of range"},
	{"hugeRange", head + "#EXT-X-BYTERANGE:9223372036854775807@1\n#EXTINF:1,\na.ts\n", 3, "past 2^63"},
	{"hugeRangeContinued", head + "#EXT-X-BYTERANGE:9223372036854775000@0\n#EXTINF:1,\na.ts\n" +
		"#EXT-X-BYTERANGE:1000\n#EXTINF:1,\na.ts\n", 6, "past 2^63"},
	{"negativeRange", head + "#EXT-X-BYTERANGE:-5@0\n#EXTINF:1,\na.ts\n", 3, "length"},
	{"rangeAfterWhole", head + "#EXTINF:1,\na.ts\n#EXT-X-BYTERANGE:100\n#EXTINF:1,\na.ts\n", 5, "same URI"},
	{"rangeOtherURI", head + "#EXT-X-BYTERANGE:100@0\n#EXTINF:1,\na.ts\n#EXTINF:1,\n#EXT-X-BYTERANGE:100\nb.ts\n", 7, "same URI"},
	{"rangeFirst", head + "#EXT-X-BYTERANGE:100\n#EXTINF:1,\na.ts\n", 3, "first segment"},
	{"mapRangeBad", head + "#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"x@0\"\n", 3, "BYTERANGE"},
	{"mapRangeUnquoted", head + "#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=100@0\n", 3, "quoted"},
	{"mapNoURI", head + "#EXT-X-MAP:BYTERANGE=\"100@0\"\n", 3, "missing URI"},
	{"ivShort", head + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x0102\n", 3, "16 bytes"},
	{"ivLong", head + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x" + strings.Repeat("00", 17) + "\n", 3, "16 bytes"},
	{"ivNotHex", head + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x" + strings.Repeat("zz", 16) + "\n", 3, "hexadecimal"},
	{"ivNoPrefix", head + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=" + strings.Repeat("00", 16) + "\n", 3, "0x"},
	{"keyNoMethod", head + "#EXT-X-KEY:URI=\"k\"\n", 3, "missing METHOD"},
	{"keyNoURI", head + "#EXT-X-KEY:METHOD=AES-128\n", 3, "missing URI"},
	{"keyMethodQuoted", head + "#EXT-X-KEY:METHOD=\"AES-128\",URI=\"k\"\n", 3, "unquoted"},
	{"unterminatedQuote", head + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\n", 3, "unterminated"},
	{"duplicateAttr", head + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",URI=\"l\"\n", 3, "twice"},
	{"noEquals", head + "#EXT-X-KEY:METHOD\n", 3, "no '='"},
	{"emptyValue", head + "#EXT-X-KEY:METHOD=,URI=\"k\"\n", 3, "missing value"},
	{"junkAfterQuote", head + "#EXT-X-KEY:METHOD=AES-128,URI=\"k\"x\n", 3, "',' expected"},
	{"spaceInValue", head + "#EXT-X-KEY:METHOD=AES 128,URI=\"k\"\n", 3, "',' expected"},
	{"badName", head + "#EXT-X-KEY:=AES-128\n", 3, "attribute name"},
	{"strayCR", head + "#EXTINF:1,\na\rb.ts\n", 4, "carriage return"},
	{"badDate", head + "#EXT-X-PROGRAM-DATE-TIME:yesterday\n", 3, "RFC 3339"},
	{"dateOutOfRange", head + "#EXT-X-PROGRAM-DATE-TIME:0000-01-01T00:00:00+01:00\n", 3, "out of range"},
	{"playlistType", head + "#EXT-X-PLAYLIST-TYPE:LIVE\n", 3, "VOD or EVENT"},
	{"streamInfNoBandwidth", "#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"avc1.42e00a\"\nv.m3u8\n", 2, "missing BANDWIDTH"},
	{"streamInfNoURI", mhead + "#EXT-X-STREAM-INF:BANDWIDTH=2\n\n# comment\n", 4, "without a URI line"},
	{"streamInfThenTag", mhead + "#EXT-X-STREAM-INF:BANDWIDTH=2\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\"\nw.m3u8\n", 5, "should be"},
	{"streamInfResolution", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1280*720\nv.m3u8\n", 2, "WIDTHxHEIGHT"},
	{"closedCaptionsEnum", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CLOSED-CAPTIONS=cc\nv.m3u8\n", 2, "NONE"},
	{"codecsUnquoted", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=avc1\nv.m3u8\n", 2, "quoted"},
	{"masterURIAlone", mhead + "w.m3u8\n", 4, "without EXT-X-STREAM-INF"},
	{"iframeNoURI", "#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1\n", 2, "missing URI"},
	{"mediaNoName", "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\"\n", 2, "missing NAME"},
	{"mediaBadType", "#EXTM3U\n#EXT-X-MEDIA:TYPE=TEXT,GROUP-ID=\"a\",NAME=\"a\"\n", 2, "unknown TYPE"},
	{"mediaCCWithURI", "#EXTM3U\n#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"a\",NAME=\"a\",INSTREAM-ID=\"CC1\",URI=\"x\"\n", 2, "URI with TYPE=CLOSED-CAPTIONS"},
	{"mediaBadBool", "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\",DEFAULT=TRUE\n", 2, "YES or NO"},
	{"sessionKeyNone", "#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=NONE\n", 2, "METHOD=NONE"},
	{"startNoOffset", "#EXTM3U\n#EXT-X-START:PRECISE=YES\n", 2, "missing TIME-OFFSET"},
	{"startNaN", "#EXTM3U\n#EXT-X-START:TIME-OFFSET=NaN\n", 2, "decimal"},
	{"mixedMasterThenMedia", mhead + "#EXTINF:1,\na.ts\n", 4, "EXTINF in a master playlist (see line 2)"},
	{"mixedMediaThenMaster", head + "#EXTINF:1,\na.ts\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", 5, "in a media playlist (see line 2)"},
	{"mixedKeyInMaster", mhead + "#EXT-X-KEY:METHOD=NONE\n", 4, "in a master playlist"},
	{"sequenceOverflow", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:9223372036854775805\n" +
		strings.Repeat("#EXTINF:1,\na.ts\n", 5), 11, "media sequence number past 2^63-1"},
	{"discontinuityOverflow", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-DISCONTINUITY-SEQUENCE:9223372036854775806\n" +
		strings.Repeat("#EXT-X-DISCONTINUITY\n#EXTINF:1,\na.ts\n", 2), 9, "discontinuity sequence number past 2^63-1"},
	{"durationPastTargetRange", head + "#EXTINF:2147483648,\na.ts\n", 3, "out of range"},
	{"startOffsetOutOfRange", "#EXTM3U\n#EXT-X-START:TIME-OFFSET=-1" + strings.Repeat("0", 20) + "\n", 2, "out of range"},
	{"resolutionHuge", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=2147483648x2\nv.m3u8\n", 2, "WIDTHxHEIGHT"},
	{"tooLongLine", "#EXTM3U\n#" + strings.Repeat("x", maxLineLength) + "\n", 2, "longer than 1 MiB"},
	{"tooLongLastLine", "#EXTM3U\n#" + strings.Repeat("x", maxLineLength), 2, "longer than 1 MiB"},
	{"tooLarge", "#EXTM3U\n" + strings.Repeat("#"+strings.Repeat("x", 1<<10-2)+"\n", MaxPlaylistSize>>10), 1<<14 + 1, "larger than 16 MiB"},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := Parse(strings.NewReader(tt.in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse = %v, %v; want a *SyntaxError", pl, err)
			}
			if se.Line != tt.line || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("Parse: %v; want line %d and %q", err, tt.line, tt.msg)
			}
		})
	}
}

func TestParseSyntaxErrorText(t *testing.T) {
	for _, tt := range []struct {
		err  *SyntaxError
		want string
	}{
		{&SyntaxError{Line: 12, Msg: "segment URI without EXTINF"}, "hls: line 12: segment URI without EXTINF"},
		{&SyntaxError{Msg: "media playlist without EXT-X-TARGETDURATION"}, "hls: media playlist without EXT-X-TARGETDURATION"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// A hostile server cannot make Parse read without end.
func TestParseEndlessInput(t *testing.T) {
	comments := endless("# " + strings.Repeat("x", 1000) + "\n")
	_, err := Parse(io.MultiReader(strings.NewReader("#EXTM3U\n"), comments))
	var se *SyntaxError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "larger than") {
		t.Errorf("Parse(endless comments) = %v", err)
	}
	_, err = Parse(io.MultiReader(strings.NewReader("#EXTM3U\n"), endless("x")))
	if !errors.As(err, &se) || se.Line != 2 || !strings.Contains(se.Msg, "longer than") {
		t.Errorf("Parse(endless line) = %v", err)
	}
}

// endless repeats a pattern forever.
type endlessReader struct {
	pattern string
	pos     int
}

func endless(pattern string) io.Reader { return &endlessReader{pattern: pattern} }

func (e *endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.pattern[e.pos]
		e.pos = (e.pos + 1) % len(e.pattern)
	}
	return len(p), nil
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader(ffmpegVOD[:40]), iotest.ErrReader(boom))
	if _, err := Parse(r); !errors.Is(err, boom) {
		t.Errorf("Parse = %v, want %v wrapped", err, boom)
	}
	// One byte at a time makes no difference.
	pl, err := Parse(iotest.OneByteReader(strings.NewReader(ffmpegVOD)))
	if err != nil || !bytes.Equal(pl.Encode(), mustParse(t, ffmpegVOD).Encode()) {
		t.Errorf("Parse(OneByteReader) = %v, %v", pl, err)
	}
}

// The last segment may carry the highest media sequence number there is,
// and not one more.
func TestParseSequenceAtTheEdge(t *testing.T) {
	m := mustParseMedia(t, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:9223372036854775805\n"+
		strings.Repeat("#EXTINF:1,\na.ts\n", 3))
	if got := m.Seq(len(m.Segments) - 1); got != math.MaxInt64 {
		t.Errorf("last sequence number %d, want %d", got, int64(math.MaxInt64))
	}
}

// hugeMedia is a media playlist of about size bytes, as many one-byte
// segments as fit.
func hugeMedia(size int) (string, int) {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-TARGETDURATION:1\n")
	n := 0
	for b.Len() < size-len("#EXT-X-ENDLIST\n")-14 {
		b.WriteString("#EXTINF:1,\na\n")
		n++
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.String(), n
}

// A playlist of more segments than the limit is refused as it is read:
// the 16 MiB a server may send cannot make the parser hold a million
// segments (over 400 MiB).
func TestParseSegmentLimit(t *testing.T) {
	in, n := hugeMedia(MaxPlaylistSize)
	if n <= DefaultMaxSegments {
		t.Fatalf("only %d segments", n)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Parse(strings.NewReader(in))
	runtime.ReadMemStats(&after)
	le, ok := errors.AsType[*LimitError](err)
	if !ok || le.Limit != DefaultMaxSegments || le.What != "segments" {
		t.Fatalf("Parse(%d segments) = %v, want a *LimitError at %d segments", n, err, DefaultMaxSegments)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 96<<20 {
		t.Errorf("refusing %d segments allocated %d MiB", n, alloc>>20)
	}

	small, _ := hugeMedia(1 << 10)
	if _, err := (Limits{MaxSegments: 10}).Parse(strings.NewReader(small)); !errors.As(err, &le) || le.Limit != 10 {
		t.Errorf("Limits{MaxSegments: 10}.Parse = %v", err)
	}
	if m, err := (Limits{MaxSegments: -1}).ParseMedia(strings.NewReader(in)); err != nil || len(m.Segments) != n {
		t.Errorf("without a limit: %v", err)
	}
}

// A multivariant playlist's variants and renditions are bounded too.
func TestParseMasterLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("#EXTM3U\n")
	for range maxMasterEntries + 1 {
		b.WriteString("#EXT-X-STREAM-INF:BANDWIDTH=1\nv\n")
	}
	_, err := Parse(strings.NewReader(b.String()))
	if le, ok := errors.AsType[*LimitError](err); !ok || le.Limit != maxMasterEntries {
		t.Fatalf("Parse = %v, want a *LimitError", err)
	}
}
