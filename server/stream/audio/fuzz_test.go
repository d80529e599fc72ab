package audio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"testing"
	"testing/iotest"

	"github.com/ferryhq/ferry/server/stream/audio"
)

// FuzzProcess runs the processor ferry serve picks for a request (its
// query and Content-Type) over any content, read a byte at a time or in
// one piece: it must end, with nil or a typed error, and every reply it
// emits must encode as JSON (a NaN or an infinity would not).
func FuzzProcess(f *testing.F) {
	ok := wav{channels: 1}.bytes(pcm(tone(16000, 0.3, 440, 0.5)))
	for _, s := range []struct {
		query, ctype string
		data         []byte
	}{
		{"", "audio/wav", ok},
		{"", "audio/wav", ok[:44]},
		{"", "audio/wav", []byte("RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\xfe\xff\x08\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00data\x00\x00\x00\x00")},
		{"", "audio/wav", []byte("RF64\xff\xff\xff\xffWAVEds64\x1c\x00\x00\x00")},
		{"", "audio/x-wav", []byte("RIFX")},
		{"?format=s16le&rate=1&channels=8", "", []byte{0, 0x80, 0xff, 0x7f}},
		{"?format=s16le&rate=2147483647", "", ok},
		{"?format=s16le&channels=0", "", ok},
	} {
		f.Add(s.query, s.ctype, s.data, false)
		f.Add(s.query, s.ctype, s.data, true)
	}
	f.Fuzz(func(t *testing.T, query, ctype string, data []byte, oneByte bool) {
		r := httptest.NewRequest("POST", "/stream/x.wav", nil)
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", ctype)
		p := audio.FromRequest("x.wav", r)
		var rd io.Reader = bytes.NewReader(data)
		if oneByte {
			rd = iotest.OneByteReader(rd)
		}
		replies := 0
		err := p.Process(context.Background(), rd, func(v any) {
			replies++
			if _, err := json.Marshal(v); err != nil {
				t.Fatalf("reply %#v does not encode: %v", v, err)
			}
		})
		if err != nil && !errors.Is(err, audio.ErrNotWAV) && !errors.Is(err, audio.ErrUnsupported) &&
			!errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, audio.ErrInvalidQuery) {
			t.Fatalf("Process: %v, not a typed error", err)
		}
		// A window holds at least MinSampleRate/10 frames of two bytes:
		// the replies stay a small fraction of the content.
		if replies > len(data)/(audio.MinSampleRate/5)*3+8 {
			t.Fatalf("%d replies for %d bytes", replies, len(data))
		}
	})
}
