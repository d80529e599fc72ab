package hls

import (
	"math"
	"strings"
	"testing"
)

// FuzzRoundTrip checks that whatever Parse accepts, Encode writes so that
// Parse reads the same model back, and that Encode is then stable.
func FuzzRoundTrip(f *testing.F) {
	seedParse(f)
	f.Add(strings.ReplaceAll(master, "\n", "\r\n"))
	f.Add("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n" +
		"#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"10\"\n#EXT-X-KEY:METHOD=NONE\n#EXT-X-PROGRAM-DATE-TIME:2024-03-01T12:00:00.123456+02:00\n" +
		"#EXT-X-GAP\n#EXT-X-BITRATE:10\n#EXTINF:0.000001,t\na.m4s\n#EXT-X-BITRATE:0\n#EXT-X-START:TIME-OFFSET=-0\n#EXTINF:6,\nb.m4s\n")
	f.Fuzz(func(t *testing.T, in string) {
		pl, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		checkRoundTrip(t, pl)
	})
}

// fuzzLimit is the segment bound of the parse fuzz targets, small so that
// the fuzzer finds the edge.
const fuzzLimit = 32

// seedParse adds the table cases and inputs at the numeric edges.
func seedParse(f *testing.F) {
	for _, s := range samples {
		f.Add(s)
	}
	for _, c := range errorCases {
		if len(c.in) < 1<<12 {
			f.Add(c.in)
		}
	}
	f.Add("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:9223372036854775806\n#EXTINF:1,\na\n#EXTINF:1,\na\n")
	f.Add("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-DISCONTINUITY-SEQUENCE:9223372036854775807\n#EXT-X-DISCONTINUITY\n#EXTINF:1,\na\n")
	f.Add("#EXTM3U\n#EXT-X-TARGETDURATION:2147483647\n#EXT-X-BYTERANGE:9223372036854775000@807\n#EXTINF:2147483647,\na\n")
	f.Add("#EXTM3U\n" + strings.Repeat("#EXTINF:1,\na\n", fuzzLimit+1) + "#EXT-X-TARGETDURATION:1\n")
	f.Add("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=9223372036854775807,RESOLUTION=2147483647x2147483647\nv\n")
}

// FuzzParseMedia checks what ParseMedia accepts: never more segments than
// the limit, no sequence number, byte range or duration past its range,
// nothing held that the input did not bring, and a faithful round trip.
func FuzzParseMedia(f *testing.F) {
	seedParse(f)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := Limits{MaxSegments: fuzzLimit}.ParseMedia(strings.NewReader(in))
		if err != nil {
			return
		}
		if len(m.Segments) > fuzzLimit {
			t.Fatalf("%d segments past the limit of %d", len(m.Segments), fuzzLimit)
		}
		if n := int64(len(m.Segments)); n > 0 && m.MediaSequence > math.MaxInt64-(n-1) {
			t.Fatalf("media sequence %d with %d segments passes 2^63-1", m.MediaSequence, n)
		}
		if m.MediaSequence < 0 || m.DiscontinuitySequence < 0 || m.TargetDuration < 0 {
			t.Fatalf("negative numbers: %+v", m)
		}
		discs, held := int64(0), 0
		for i, s := range m.Segments {
			if s.Discontinuity {
				discs++
			}
			if s.Duration < 0 || s.Duration > maxSeconds || math.IsNaN(s.Duration) {
				t.Fatalf("segment %d: duration %v", i, s.Duration)
			}
			if r := s.ByteRange; r != nil && (r.Length < 0 || r.Offset < 0 || r.Offset > math.MaxInt64-r.Length) {
				t.Fatalf("segment %d: byte range %+v", i, *r)
			}
			held += len(s.URI) + len(s.Title)
		}
		if m.DiscontinuitySequence > math.MaxInt64-discs {
			t.Fatalf("discontinuity sequence %d with %d discontinuities passes 2^63-1", m.DiscontinuitySequence, discs)
		}
		if held > len(in) {
			t.Fatalf("the model holds %d bytes of URIs and titles from %d bytes of input", held, len(in))
		}
		checkRoundTrip(t, m)
	})
}

// FuzzParseMaster checks what ParseMaster accepts: a bounded number of
// entries, no negative number, and a faithful round trip.
func FuzzParseMaster(f *testing.F) {
	seedParse(f)
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseMaster(strings.NewReader(in))
		if err != nil {
			return
		}
		if n := len(m.Variants) + len(m.IFrameVariants) + len(m.Renditions) + len(m.SessionKeys); n > maxMasterEntries {
			t.Fatalf("%d entries past the limit of %d", n, maxMasterEntries)
		}
		for _, v := range append(m.Variants, m.IFrameVariants...) {
			if v.Bandwidth < 0 || v.AverageBandwidth < 0 || v.Resolution.Width < 0 || v.Resolution.Height < 0 || v.FrameRate < 0 {
				t.Fatalf("negative numbers in %+v", v)
			}
		}
		for _, k := range m.SessionKeys {
			if k.IV != nil && len(k.IV) != 16 {
				t.Fatalf("an IV of %d bytes", len(k.IV))
			}
		}
		checkRoundTrip(t, m)
	})
}
