package hls

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// dump shows a playlist model in a test failure.
func dump(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"ffmpegVOD", ffmpegVOD, `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:10
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:10,
out0.ts
#EXTINF:10,
out1.ts
#EXTINF:4.52,
out2.ts
#EXT-X-ENDLIST
`},
		{"aesRotation", aesRotation, `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:7
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example.com/k1",IV=0x0123456789abcdef0123456789abcdef
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
`},
		{"rangesNoOffset", rangesNoOffset, `#EXTM3U
#EXT-X-VERSION:4
#EXT-X-TARGETDURATION:10
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-BYTERANGE:1000@376
#EXTINF:10,
all.ts
#EXT-X-BYTERANGE:2000@1376
#EXTINF:10,
all.ts
#EXT-X-BYTERANGE:500@3376
#EXTINF:5,
all.ts
#EXT-X-ENDLIST
`},
		{"fmp4SingleFile", fmp4SingleFile, `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:5
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://k",IV=0x000102030405060708090a0b0c0d0e0f,KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"
#EXT-X-MAP:URI="main.mp4",BYTERANGE="720@0"
#EXT-X-BYTERANGE:300000@720
#EXTINF:4.004,
main.mp4
#EXT-X-BYTERANGE:280000@300720
#EXTINF:4.004,
main.mp4
#EXT-X-MAP:URI="main2.mp4",BYTERANGE="800@0"
#EXT-X-BYTERANGE:100000@800
#EXTINF:2.002,
main2.mp4
#EXT-X-ENDLIST
`},
		{"discontinuities", discontinuities, `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:10
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-PROGRAM-DATE-TIME:2024-03-01T12:00:00.000Z
#EXTINF:10,
a.ts
#EXTINF:10,
b.ts
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2024-03-01T12:00:20.500Z
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
`},
		{"live", live, `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:8
#EXT-X-MEDIA-SEQUENCE:2680
#EXTINF:7.975,
https://priv.example.com/fileSequence2680.ts
#EXTINF:7.941,
https://priv.example.com/fileSequence2681.ts
#EXTINF:7.975,
https://priv.example.com/fileSequence2682.ts
`},
		{"master", master, `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-START:TIME-OFFSET=-12.5,PRECISE=YES
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://key1",KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/en/index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Français",LANGUAGE="fr",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="audio/fr/index.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,CHARACTERISTICS="public.accessibility.transcribes-spoken-dialog,public.easy-to-read",URI="subs/en/index.m3u8"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="English CC",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=NO,INSTREAM-ID="CC1"
#EXT-X-STREAM-INF:BANDWIDTH=2483789,AVERAGE-BANDWIDTH=2000000,CODECS="avc1.640020,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.97,AUDIO="aac",SUBTITLES="subs",CLOSED-CAPTIONS="cc"
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=25,HDCP-LEVEL=NONE,AUDIO="aac",SUBTITLES="subs",CLOSED-CAPTIONS=NONE
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="mp4a.40.2",AUDIO="aac"
audio-only.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=186522,CODECS="avc1.640020",RESOLUTION=1280x720,URI="720p/iframes.m3u8"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=61000,CODECS="avc1.4d401e",RESOLUTION=640x360,VIDEO="v",URI="360p/iframes.m3u8"
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(mustParse(t, tt.in).Encode())
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// Every sample reads back as the same model, and encodes the same again.
func TestEncodeRoundTrip(t *testing.T) {
	for name, in := range samples {
		t.Run(name, func(t *testing.T) {
			checkRoundTrip(t, mustParse(t, in))
		})
	}
}

func checkRoundTrip(t testing.TB, pl Playlist) {
	t.Helper()
	out := pl.Encode()
	pl2, err := Parse(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("Parse(Encode()): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(pl, pl2) {
		t.Fatalf("model changed by Encode and Parse:\n%s\nnow\n%s\nencoded as\n%s", dump(pl), dump(pl2), out)
	}
	if out2 := pl2.Encode(); !bytes.Equal(out, out2) {
		t.Fatalf("Encode changed:\n%s\nnow\n%s", out, out2)
	}
}

// Keys and maps are compared by value: a playlist built by hand need not
// share pointers.
func TestEncodeKeysByValue(t *testing.T) {
	iv := bytes.Repeat([]byte{0xab}, 16)
	m := &Media{TargetDuration: 4, Segments: []Segment{
		{URI: "a.m4s", Duration: 4, Key: &Key{Method: "AES-128", URI: "k", IV: iv}},
		{URI: "b.m4s", Duration: 4, Key: &Key{Method: "AES-128", URI: "k", IV: bytes.Clone(iv)}},
		{URI: "c.m4s", Duration: 4, Key: &Key{Method: "NONE"}},
		{URI: "d.m4s", Duration: 4},
		{URI: "e.m4s", Duration: 4, Key: &Key{Method: "AES-128", URI: "k"}, Map: &Map{URI: "init.mp4"}},
		{URI: "f.m4s", Duration: 4, Key: &Key{Method: "AES-128", URI: "k"}, Map: &Map{URI: "init.mp4"}},
		// A map cannot be taken back: g keeps init.mp4.
		{URI: "g.m4s", Duration: 4},
		{URI: "h.m4s", Duration: 4, Map: &Map{URI: "init2.mp4", Key: &Key{Method: "AES-128", URI: "k2", IV: iv}}},
	}}
	want := `#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-KEY:METHOD=AES-128,URI="k",IV=0xabababababababababababababababab
#EXTINF:4,
a.m4s
#EXTINF:4,
b.m4s
#EXT-X-KEY:METHOD=NONE
#EXTINF:4,
c.m4s
#EXTINF:4,
d.m4s
#EXT-X-MAP:URI="init.mp4"
#EXT-X-KEY:METHOD=AES-128,URI="k"
#EXTINF:4,
e.m4s
#EXTINF:4,
f.m4s
#EXT-X-KEY:METHOD=NONE
#EXTINF:4,
g.m4s
#EXT-X-KEY:METHOD=AES-128,URI="k2",IV=0xabababababababababababababababab
#EXT-X-MAP:URI="init2.mp4"
#EXT-X-KEY:METHOD=NONE
#EXTINF:4,
h.m4s
`
	if got := string(m.Encode()); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	m2 := mustParseMedia(t, want)
	if s := m2.Segments; s[6].Map.URI != "init.mp4" || s[7].Map.Key.URI != "k2" || s[7].Key != nil {
		t.Errorf("read back as\n%s", dump(m2))
	}
}

// Values no parsed playlist holds are changed so that the output still
// parses.
func TestEncodeSanitizes(t *testing.T) {
	m := &Media{
		TargetDuration: -3,
		MediaSequence:  -1,
		PlaylistType:   "LIVE",
		Start:          &Start{TimeOffset: math.NaN()},
		Segments: []Segment{
			{URI: " #frag\r\n", Duration: math.NaN(), Title: "two\nlines \t",
				Key: &Key{Method: "AES,128", URI: "k\"ey\"", IV: []byte{1, 2}}},
			{URI: "", Duration: -1, Bitrate: -5, ByteRange: &ByteRange{Length: -1, Offset: -1},
				ProgramDateTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
			{URI: "x.ts", Duration: math.Inf(1), Key: &Key{Method: "SAMPLE-AES", URI: "k", IV: make([]byte, 17)},
				ByteRange:       &ByteRange{Length: 10, Offset: math.MaxInt64},
				ProgramDateTime: time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.FixedZone("", 3600))},
			{URI: "y.ts", Key: &Key{Method: ""}, Map: &Map{URI: "i\r\n\"nit", ByteRange: &ByteRange{Length: 5}}},
		},
	}
	want := `#EXTM3U
#EXT-X-TARGETDURATION:0
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-KEY:METHOD=AES128,URI="key",IV=0x00000000000000000000000000000102
#EXTINF:0,twolines
%23frag
#EXT-X-KEY:METHOD=NONE
#EXT-X-BYTERANGE:0@0
#EXTINF:0,
.
#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k"
#EXT-X-PROGRAM-DATE-TIME:2024-01-02T02:04:05.123456789Z
#EXT-X-BYTERANGE:10@9223372036854775797
#EXTINF:0,
x.ts
#EXT-X-KEY:METHOD=NONE
#EXT-X-MAP:URI="init",BYTERANGE="5@0"
#EXTINF:0,
y.ts
`
	got := m.Encode()
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	checkRoundTrip(t, mustParse(t, string(got)))

	ms := &Master{
		Version:     -1,
		Start:       &Start{TimeOffset: math.Inf(-1)},
		SessionKeys: []Key{{Method: "NONE"}, {Method: "AES-128", URI: "sk"}},
		Renditions: []Rendition{
			{Type: "TEXT", GroupID: "t", Name: "t"},
			{Type: "CLOSED-CAPTIONS", GroupID: "c\"c", Name: "CC", URI: "cc.m3u8", InstreamID: "CC1"},
		},
		Variants: []Variant{
			{URI: "", Bandwidth: -1, Codecs: `avc1,"x"`, Resolution: Resolution{-1, 720},
				FrameRate: math.Inf(1), HDCPLevel: "TYPE 0", ClosedCaptions: "c\"c"},
		},
		IFrameVariants: []Variant{{URI: "i\n.m3u8", Bandwidth: 1, FrameRate: 30, Audio: "a", ClosedCaptions: "NONE"}},
	}
	want = `#EXTM3U
#EXT-X-SESSION-KEY:METHOD=AES-128,URI="sk"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC",DEFAULT=NO,AUTOSELECT=NO,INSTREAM-ID="CC1"
#EXT-X-STREAM-INF:BANDWIDTH=0,CODECS="avc1,x",RESOLUTION=0x720,HDCP-LEVEL=TYPE0,CLOSED-CAPTIONS="cc"
.
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="i.m3u8"
`
	got = ms.Encode()
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	checkRoundTrip(t, mustParse(t, string(got)))
}

func TestWriteTo(t *testing.T) {
	for _, in := range []string{ffmpegVOD, master} {
		pl := mustParse(t, in)
		var b strings.Builder
		n, err := pl.(io.WriterTo).WriteTo(&b)
		if err != nil || n != int64(b.Len()) || b.String() != string(pl.Encode()) {
			t.Errorf("WriteTo = %d, %v; wrote\n%s", n, err, b.String())
		}
	}
}
