// Package stream serves live streamed uploads: a client sends a recording
// while it is being recorded, and hears back while it sends.
//
// POST <BasePath><name> stores the request body as it arrives and runs a
// Processor over it; the response starts at once and carries the
// processor's replies as NDJSON, one JSON object per line, while the body
// still flows (full duplex: HTTP/2, or HTTP/1.1 with chunked transfer).
// Every reply carries a sequence number "seq"; the server adds replies of
// its own: {"type":"stored","offset":N} as the stored length grows, and at
// the end {"type":"done","bytes":N,"sha256":HEX}. The finished stream is
// served at GET <BasePath><name>, typed by its name or its first bytes but
// never as active content: only audio, video, images but SVG and plain text
// are shown inline; anything else is an application/octet-stream
// attachment, and every answer carries nosniff and a sandbox policy.
//
// A stream created with the IETF resumable-upload draft's Upload-Complete
// field is resumable: the server answers 104 (Upload Resumption Supported)
// with the stream's upload URL in Location, keeps what arrived when a
// connection drops, tells the offset on HEAD and takes the rest on PATCH
// (Upload-Offset, Upload-Complete; the last append says ?1). The client
// names the last reply it received in Ferry-Replies-After, and the
// response to its PATCH continues after it: replies produced while the
// client was away are not lost, and none arrives twice. The processor reads
// one continuous stream across all of it. A stream in progress is an
// upload of deferred length, changed as every upload of ferry's server is,
// through a resumable.Handler (see resumable.Hold): a request for it takes
// over the one still holding it, whose client must have gone.
//
// Streams in progress, unfinished resumable ones waiting for their client
// included, are bounded in all (Config.MaxStreams, 503 past it) and per
// client (Config.MaxStreamsPerClient, 429 past it), and the replies kept
// for a client that is not reading are bounded in count and bytes. What
// streams store draws on Config.Storage (507 when it is full), and their
// creation on Config.CreationLimit (429).
package stream
