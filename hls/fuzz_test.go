package hls

import (
	"strings"
	"testing"
)

// FuzzRoundTrip checks that whatever Parse accepts, Encode writes so that
// Parse reads the same model back, and that Encode is then stable.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range samples {
		f.Add(s)
	}
	for _, c := range errorCases {
		if len(c.in) < 1<<12 {
			f.Add(c.in)
		}
	}
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
