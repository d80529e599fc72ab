package transfer

import (
	"net/http"
	"time"
)

// Event is something an engine reports about its task: ProgressEvent,
// ResponseEvent, RedirectEvent, MetricsEvent, RetryEvent, RestartEvent,
// ReplyEvent or SegmentEvent. The root package shows each as its public
// twin and adds the task's DoneEvent.
type Event interface{ event() }

// ProgressEvent reports bytes done. Progress events are coalesced: a slow
// reader sees the latest one, never a backlog.
type ProgressEvent struct{ Progress }

// ResponseEvent reports the head of a response that carries the task's data.
type ResponseEvent struct {
	StatusCode    int
	Proto         string
	Header        http.Header
	ContentLength int64
}

// RedirectEvent reports a redirect that the redirect policy allowed.
type RedirectEvent struct {
	StatusCode int
	From, To   string
}

// MetricsEvent carries the timings of one finished HTTP transaction.
type MetricsEvent struct{ Transaction TransactionMetrics }

// RetryEvent reports a failed attempt that will be repeated after Delay.
type RetryEvent struct {
	Attempt int // consecutive failures so far
	Delay   time.Duration
	Err     error
	// Host is the host (and port, if the URL names one) the failed
	// request went to, when Err says.
	Host string
	// Unreachable says the host could not be reached at all: the
	// connection was refused or had no route, or the name did not resolve
	// for now. Nothing was exchanged; the next attempt waits for the host
	// to come (back).
	Unreachable bool
}

// RestartEvent reports that bytes kept so far were discarded and the transfer
// starts again from zero, and why (the representation changed, the server
// ignored the range, ...).
type RestartEvent struct {
	Discarded int64
	Reason    string
}

// ReplyEvent carries one reply of the server to a live stream, in order:
// Seq is the server's sequence number (0 when it numbers none), Type the
// reply's "type" member, Line the reply as sent (one JSON object, for a
// ferry server).
type ReplyEvent struct {
	Seq  int64
	Type string
	Line []byte
}

// SegmentEvent reports a media segment of an HLS download finished (or,
// with Hole, given up on). Done and Total count the segments of all of the
// download's playlists; Total is -1 while a live playlist may still grow.
type SegmentEvent struct {
	Playlist string // the local media playlist, relative to the output directory
	Seq      int64  // the segment's media sequence number
	Bytes    int64  // its size on disk
	Done     int
	Total    int
	Hole     bool
}

// RequestEvent reports a request as it is sent: each attempt and each
// redirect hop. Header is a copy, without what the transport adds
// (Authorization answering a challenge, Cookie from the jar).
type RequestEvent struct {
	Method, URL string
	Header      http.Header
}

// InterimEvent reports an interim (1xx) response to a request, such as
// the 104 (Upload Resumption Supported) that tells an upload's offset as
// it goes; 101 is not one.
type InterimEvent struct {
	StatusCode int
	Header     http.Header
}

// ResumeEvent reports that the transfer continues from Offset bytes kept
// from before, of Expected (-1: unknown).
type ResumeEvent struct{ Offset, Expected int64 }

func (ProgressEvent) event() {}
func (ResponseEvent) event() {}
func (RedirectEvent) event() {}
func (MetricsEvent) event()  {}
func (RetryEvent) event()    {}
func (RestartEvent) event()  {}
func (ReplyEvent) event()    {}
func (SegmentEvent) event()  {}
func (ResumeEvent) event()   {}
func (RequestEvent) event()  {}
func (InterimEvent) event()  {}
