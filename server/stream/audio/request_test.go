package audio_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/server/stream/audio"
)

func TestFromRequest(t *testing.T) {
	const none, wavIn, rawIn, bad = "none", "wav", "raw", "bad"
	tests := []struct {
		name, target, contentType string
		want                      string // none, wav, raw or bad
		rate, channels            int    // of raw
		err                       string // of bad
	}{
		{"audio/wav", "/stream/take1", "audio/wav", wavIn, 0, 0, ""},
		{"audio/x-wav", "/stream/take1", "audio/x-wav", wavIn, 0, 0, ""},
		{"audio/wave", "/stream/take1", "audio/wave", wavIn, 0, 0, ""},
		{"audio/vnd.wave with parameters", "/stream/take1", "Audio/Vnd.Wave; codec=1", wavIn, 0, 0, ""},
		{"name .wav", "/stream/take1.wav", "application/octet-stream", wavIn, 0, 0, ""},
		{"name .WAV", "/stream/TAKE1.WAV", "", wavIn, 0, 0, ""},
		{"octet-stream", "/stream/take1", "application/octet-stream", none, 0, 0, ""},
		{"no type", "/stream/take1.bin", "", none, 0, 0, ""},
		{"other audio", "/stream/take1.ogg", "audio/ogg", none, 0, 0, ""},
		{"other format", "/stream/take1?format=f32le", "", none, 0, 0, ""},
		{"s16le defaults", "/stream/take1?format=s16le", "", rawIn, 16000, 1, ""},
		{"s16le stereo 48 kHz", "/stream/take1?format=s16le&rate=48000&channels=2", "application/octet-stream", rawIn, 48000, 2, ""},
		{"s16le wins over a WAV type", "/stream/take1.wav?format=s16le&rate=8000", "audio/wav", rawIn, 8000, 1, ""},
		{"rate abc", "/stream/take1?format=s16le&rate=abc", "", bad, 0, 0, `rate="abc"`},
		{"rate 0", "/stream/take1?format=s16le&rate=0", "", bad, 0, 0, `rate="0"`},
		{"rate negative", "/stream/take1?format=s16le&rate=-1", "", bad, 0, 0, `rate="-1"`},
		{"channels 9", "/stream/take1?format=s16le&channels=9", "", bad, 0, 0, `channels="9"`},
		{"channels 0", "/stream/take1?format=s16le&channels=0", "", bad, 0, 0, `channels="0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", tt.target, nil)
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			name := strings.TrimPrefix(r.URL.Path, "/stream/")
			p := audio.FromRequest(name, r)
			if tt.want == none {
				if p != nil {
					t.Fatalf("processor %#v, want nil", p)
				}
				return
			}
			if p == nil {
				t.Fatal("no processor")
			}
			var in []byte
			switch tt.want {
			case wavIn:
				in = wav{rate: 22050, channels: 2}.bytes(make([]byte, 400))
				tt.rate, tt.channels = 22050, 2
			case rawIn:
				in = make([]byte, 400)
			}
			var replies []any
			err := p.Process(context.Background(), bytes.NewReader(in), func(v any) { replies = append(replies, v) })
			if tt.want == bad {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one about %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := audio.Format{Type: "format", SampleRate: tt.rate, Channels: tt.channels, Bits: 16}
			if len(replies) == 0 || replies[0] != want {
				t.Errorf("replies %v, want %+v first", replies, want)
			}
		})
	}
}

// A sample rate below MinSampleRate is refused, from the query or a WAV
// header: at 1 Hz every two bytes of content would make a level reply,
// seventy bytes of JSON, and a client could make the server encode and
// send thirty-five times what it uploads.
func TestLowSampleRateRefused(t *testing.T) {
	content := make([]byte, 4000)
	for _, c := range []struct {
		name, target string
		in           []byte
		err          error
	}{
		{"query", "/stream/x?format=s16le&rate=1", content, audio.ErrInvalidQuery},
		{"query below", "/stream/x?format=s16le&rate=" + strconv.Itoa(audio.MinSampleRate-1), content, audio.ErrInvalidQuery},
		{"header", "/stream/x.wav", wav{rate: 1}.bytes(content), audio.ErrUnsupported},
	} {
		p := audio.FromRequest("x.wav", httptest.NewRequest("POST", c.target, nil))
		replies := 0
		err := p.Process(context.Background(), bytes.NewReader(c.in), func(any) { replies++ })
		if !errors.Is(err, c.err) || replies > 0 {
			t.Errorf("%s: %v after %d replies, want %v before any", c.name, err, replies, c.err)
		}
	}
	r := httptest.NewRequest("POST", "/stream/x?format=s16le&rate="+strconv.Itoa(audio.MinSampleRate), nil)
	if err := audio.FromRequest("x", r).Process(context.Background(), bytes.NewReader(content), func(any) {}); err != nil {
		t.Errorf("rate %d: %v", audio.MinSampleRate, err)
	}
}
