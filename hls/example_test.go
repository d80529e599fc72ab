package hls_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/ferryhq/ferry/hls"
)

func ExampleParseMedia() {
	const playlist = `#EXTM3U
#EXT-X-VERSION:4
#EXT-X-TARGETDURATION:10
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-KEY:METHOD=AES-128,URI="https://example.com/key"
#EXTINF:9.009,
#EXT-X-BYTERANGE:75232@0
video.ts
#EXTINF:9.009,
#EXT-X-BYTERANGE:82112
video.ts
#EXT-X-KEY:METHOD=NONE
#EXTINF:3.003,
clear.ts
#EXT-X-ENDLIST
`
	m, err := hls.ParseMedia(strings.NewReader(playlist))
	if err != nil {
		log.Fatal(err)
	}
	for i, s := range m.Segments {
		fmt.Printf("#%d %s %.3fs", m.Seq(i), s.URI, s.Duration)
		if r := s.ByteRange; r != nil {
			fmt.Printf(" bytes %d-%d", r.Offset, r.Offset+r.Length-1)
		}
		if s.Key != nil {
			fmt.Printf(" %s key %s", s.Key.Method, s.Key.URI)
		}
		fmt.Println()
	}
	// Output:
	// #3 video.ts 9.009s bytes 0-75231 AES-128 key https://example.com/key
	// #4 video.ts 9.009s bytes 75232-157343 AES-128 key https://example.com/key
	// #5 clear.ts 3.003s
}

func ExampleMedia_Encode() {
	initSection := &hls.Map{URI: "init.mp4"}
	m := &hls.Media{
		Version:        7,
		TargetDuration: 4,
		PlaylistType:   "VOD",
		EndList:        true,
		Segments: []hls.Segment{
			{URI: "seg0.m4s", Duration: 4, Map: initSection},
			{URI: "seg1.m4s", Duration: 4, Map: initSection},
			{URI: "seg2.m4s", Duration: 2.5, Map: initSection, Title: "credits"},
		},
	}
	fmt.Print(string(m.Encode()))
	// Output:
	// #EXTM3U
	// #EXT-X-VERSION:7
	// #EXT-X-TARGETDURATION:4
	// #EXT-X-MEDIA-SEQUENCE:0
	// #EXT-X-PLAYLIST-TYPE:VOD
	// #EXT-X-MAP:URI="init.mp4"
	// #EXTINF:4,
	// seg0.m4s
	// #EXTINF:4,
	// seg1.m4s
	// #EXTINF:2.5,credits
	// seg2.m4s
	// #EXT-X-ENDLIST
}
