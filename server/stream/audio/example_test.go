package audio_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log"
	"math"
	"net/http"
	"time"

	"github.com/ferryhq/ferry/server/stream"
	"github.com/ferryhq/ferry/server/stream/audio"
)

// The replies for a short WAV recording, 8 kHz mono: half a second of
// silence, half a second of a tone, half a second of silence. On the
// stream endpoint each reply is one NDJSON line of the response, with
// "seq" added.
func Example() {
	const rate = 8000
	var samples []byte
	for i := range 3 * rate / 2 {
		var s int16
		if i >= rate/2 && i < rate {
			s = int16(16384 * math.Sin(2*math.Pi*1000*float64(i)/rate))
		}
		samples = binary.LittleEndian.AppendUint16(samples, uint16(s))
	}
	// A header as a live recorder writes it, with the sizes unknown.
	var wav []byte
	wav = append(wav, "RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00"...)
	wav = binary.LittleEndian.AppendUint16(wav, 1)      // PCM
	wav = binary.LittleEndian.AppendUint16(wav, 1)      // mono
	wav = binary.LittleEndian.AppendUint32(wav, rate)   // samples per second
	wav = binary.LittleEndian.AppendUint32(wav, 2*rate) // bytes per second
	wav = binary.LittleEndian.AppendUint16(wav, 2)      // bytes per frame
	wav = binary.LittleEndian.AppendUint16(wav, 16)     // bits per sample
	wav = append(wav, "data\xff\xff\xff\xff"...)
	wav = append(wav, samples...)

	p := audio.New(audio.Options{Window: 250 * time.Millisecond})
	err := p.Process(context.Background(), bytes.NewReader(wav), func(v any) {
		line, _ := json.Marshal(v)
		fmt.Println(string(line))
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// {"type":"format","sample_rate":8000,"channels":1,"bits":16}
	// {"type":"level","t":0,"dur":0.25,"rms":0,"dbfs":-120}
	// {"type":"level","t":0.25,"dur":0.25,"rms":0,"dbfs":-120}
	// {"type":"level","t":0.5,"dur":0.25,"rms":0.35355,"dbfs":-9}
	// {"type":"voice_start","t":0.5}
	// {"type":"level","t":0.75,"dur":0.25,"rms":0.35355,"dbfs":-9}
	// {"type":"level","t":1,"dur":0.25,"rms":0,"dbfs":-120}
	// {"type":"level","t":1.25,"dur":0.25,"rms":0,"dbfs":-120}
	// {"type":"voice","start":0.5,"end":1}
	// {"type":"summary","duration":1.5,"samples":12000,"voice_segments":1,"voiced":0.5}
}

// Serve live uploads of recordings with their levels and voice sent back
// as they arrive: FromRequest picks this processor for WAV uploads and for
// raw ones sent with ?format=s16le&rate=16000&channels=1, and none for
// anything else, which is only stored.
func ExampleFromRequest() {
	h, err := stream.New(stream.Config{
		Dir:        "/var/lib/ferry/recordings",
		Processors: audio.FromRequest,
	})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle(stream.DefaultBasePath, h)
	log.Fatal(http.ListenAndServe(":8080", nil))
}
