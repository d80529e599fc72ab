package stream

import (
	"context"
	"io"
	"net/http"
)

// A Processor runs over one stream as it arrives. Process reads the stream's
// bytes from r, in order and exactly once, across any reconnections of the
// client, until io.EOF (the stream is complete) or an error (the stream was
// abandoned, or ctx ended). It reports what it finds with emit, as it goes;
// each value is sent to the client as one NDJSON line (a JSON object gets
// the reply's sequence number added as "seq"). emit is safe to call from any
// goroutine until Process returns.
//
// A Processor that returns early (having seen enough, or on an error) does
// not stop the stream: the rest is stored unprocessed. A returned error other
// than io.EOF is reported to the client as {"type":"error"}.
type Processor interface {
	Process(ctx context.Context, r io.Reader, emit func(v any)) error
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, r io.Reader, emit func(v any)) error

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, r io.Reader, emit func(v any)) error {
	return f(ctx, r, emit)
}

// A ProcessorFactory picks the processor for a new stream from its name and
// creating request (its Content-Type, query parameters); nil means none.
type ProcessorFactory func(name string, r *http.Request) Processor
