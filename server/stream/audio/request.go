package audio

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/server/stream"
)

var (
	_ stream.ProcessorFactory = FromRequest
	_ stream.Processor        = (*Processor)(nil)
)

// wavTypes are the media types of WAV.
var wavTypes = map[string]bool{
	"audio/wav":      true,
	"audio/x-wav":    true,
	"audio/wave":     true,
	"audio/vnd.wave": true,
}

// FromRequest is a stream.ProcessorFactory for voice recordings. It picks
// a raw s16le processor when the query says format=s16le, with the query
// parameters rate (default 16000, at least MinSampleRate) and channels
// (default 1); a WAV
// processor when the Content-Type is a WAV type or the name ends in .wav;
// and none otherwise. Invalid query parameters give a processor that
// fails at once, so that the client hears why.
func FromRequest(name string, r *http.Request) stream.Processor {
	q := r.URL.Query()
	if q.Get("format") == "s16le" {
		rate, err := queryInt(q.Get("rate"), "rate", DefaultSampleRate, MinSampleRate, 1<<31-1)
		if err != nil {
			return failed(err)
		}
		channels, err := queryInt(q.Get("channels"), "channels", DefaultChannels, 1, MaxChannels)
		if err != nil {
			return failed(err)
		}
		return New(Options{Raw: true, SampleRate: rate, Channels: channels})
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if wavTypes[mt] || strings.HasSuffix(strings.ToLower(name), ".wav") {
		return New(Options{})
	}
	return nil
}

// queryInt parses the query parameter key of value v, def when empty.
func queryInt(v, key string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w %s=%q: want an integer from %d to %d", ErrInvalidQuery, key, v, lo, hi)
	}
	return n, nil
}

// failed is a processor that reports err and reads nothing.
func failed(err error) stream.Processor {
	return stream.ProcessorFunc(func(context.Context, io.Reader, func(any)) error { return err })
}
