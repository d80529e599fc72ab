package ferry

import (
	"net/http"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
)

// Progress is a snapshot of a task's advance.
type Progress struct {
	// Done is the number of bytes of the result that are in place, including
	// bytes kept from an earlier run.
	Done int64 `json:"done"`
	// Expected is the size of the whole result, or -1 while it is unknown.
	Expected int64 `json:"expected"`
	// Speed is the recent transfer rate in bytes per second.
	Speed float64 `json:"speed"`
}

// Fraction is Done/Expected in [0,1], or -1 when Expected is unknown.
func (p Progress) Fraction() float64 { return transfer.Progress(p).Fraction() }

// ETA estimates the time left at the current speed; ok is false when it
// cannot be known.
func (p Progress) ETA() (d time.Duration, ok bool) { return transfer.Progress(p).ETA() }

// Event is something that happened to a task; receive them from
// Task.Events and switch on the concrete type: StateEvent, RequestEvent,
// InterimEvent, ProgressEvent, ResponseEvent, RedirectEvent, MetricsEvent, RetryEvent, RestartEvent,
// ResumeEvent, ReplyEvent, SegmentEvent and, last, DoneEvent.
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

// RequestEvent reports a request of the task as it is sent: each attempt
// and each redirect hop, the task's current request (URLSessionTask's
// currentRequest). Header is a copy, without what the transport adds
// (Authorization answering a challenge, Cookie from the cookie store).
type RequestEvent struct {
	Method, URL string
	Header      http.Header
}

// InterimEvent reports an interim (1xx) response to one of the task's
// requests, such as the 104 (Upload Resumption Supported) by which an
// IETF resumable-upload server tells the offset it has stored.
type InterimEvent struct {
	StatusCode int
	Header     http.Header
}

// ResumeEvent reports that a download continues from Offset bytes kept
// from before (its .part file, or ResumeData), of Expected (-1: unknown),
// as URLSession's didResumeAtOffset does.
type ResumeEvent struct{ Offset, Expected int64 }

// StateEvent reports that the task's state changed to State, as observing
// a URLSessionTask's state does: Running on Resume, Suspended, Canceling,
// and Completed just before the DoneEvent.
type StateEvent struct{ State State }

// DoneEvent is the last event of a task. Err is nil on success.
type DoneEvent struct {
	Err     error
	Metrics TaskMetrics
}

func (ProgressEvent) event() {}
func (ResponseEvent) event() {}
func (RedirectEvent) event() {}
func (MetricsEvent) event()  {}
func (RetryEvent) event()    {}
func (ResumeEvent) event()   {}
func (StateEvent) event()    {}
func (RequestEvent) event()  {}
func (InterimEvent) event()  {}
func (RestartEvent) event()  {}
func (DoneEvent) event()     {}
func (ReplyEvent) event()    {}
func (SegmentEvent) event()  {}

// TransactionMetrics describes one HTTP request/response exchange, in the
// spirit of URLSessionTaskTransactionMetrics, recorded with
// net/http/httptrace. Instants are zero when the phase did not happen (no
// DNS lookup for an IP literal, no dial on a reused connection, no TLS for
// http).
type TransactionMetrics struct {
	Method     string `json:"method"`
	URL        string `json:"url"`
	StatusCode int    `json:"status,omitempty"`
	Proto      string `json:"proto,omitempty"`
	RemoteAddr string `json:"remote_addr,omitempty"`
	LocalAddr  string `json:"local_addr,omitempty"`
	ReusedConn bool   `json:"reused_conn"`
	// TLSVersion and TLSCipherSuite are what the connection negotiated,
	// e.g. "TLS 1.3" and "TLS_AES_128_GCM_SHA256"; empty over plain
	// http.
	TLSVersion     string `json:"tls_version,omitempty"`
	TLSCipherSuite string `json:"tls_cipher_suite,omitempty"`
	// Proxy is the proxy the request went through, as a URL without its
	// credentials; empty when it went direct.
	Proxy string `json:"proxy,omitempty"`

	Start          time.Time `json:"start"`
	DNSStart       time.Time `json:"dns_start,omitzero"`
	DNSDone        time.Time `json:"dns_done,omitzero"`
	ConnectStart   time.Time `json:"connect_start,omitzero"`
	ConnectDone    time.Time `json:"connect_done,omitzero"`
	TLSStart       time.Time `json:"tls_start,omitzero"`
	TLSDone        time.Time `json:"tls_done,omitzero"`
	GotConn        time.Time `json:"got_conn,omitzero"`
	RequestWritten time.Time `json:"request_written,omitzero"`
	FirstByte      time.Time `json:"first_byte,omitzero"`
	End            time.Time `json:"end,omitzero"`

	RequestHeaderBytes  int64 `json:"request_header_bytes"`
	RequestBodyBytes    int64 `json:"request_body_bytes"`
	ResponseHeaderBytes int64 `json:"response_header_bytes"`
	ResponseBodyBytes   int64 `json:"response_body_bytes"`

	Err string `json:"error,omitempty"`
}

// Duration is End-Start, or 0 when the transaction has not ended.
func (t TransactionMetrics) Duration() time.Duration {
	return transfer.TransactionMetrics(t).Duration()
}

// TaskMetrics sums up a task: its interval, what it cost, and every
// transaction it made.
type TaskMetrics struct {
	Start        time.Time            `json:"start"`
	End          time.Time            `json:"end,omitzero"`
	Redirects    int                  `json:"redirects"`
	Retries      int                  `json:"retries"`
	Restarts     int                  `json:"restarts"`
	Connections  int                  `json:"connections"` // connections that carried a request
	Transactions []TransactionMetrics `json:"transactions"`
}

// Duration is the task's interval so far.
func (m TaskMetrics) Duration() time.Duration {
	end := m.End
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(m.Start)
}

// publicEvent is an engine's event as the public API shows it. The
// conversions fail to compile when a public type and its engine twin
// drift apart.
func publicEvent(ev transfer.Event) Event {
	switch e := ev.(type) {
	case transfer.ProgressEvent:
		return ProgressEvent{Progress(e.Progress)}
	case transfer.ResponseEvent:
		return ResponseEvent(e)
	case transfer.RedirectEvent:
		return RedirectEvent(e)
	case transfer.MetricsEvent:
		return MetricsEvent{TransactionMetrics(e.Transaction)}
	case transfer.RetryEvent:
		r := RetryEvent(e)
		r.Err = publicError(r.Err)
		return r
	case transfer.RestartEvent:
		return RestartEvent(e)
	case transfer.ReplyEvent:
		return ReplyEvent(e)
	case transfer.SegmentEvent:
		return SegmentEvent(e)
	case transfer.ResumeEvent:
		return ResumeEvent(e)
	case transfer.RequestEvent:
		return RequestEvent(e)
	case transfer.InterimEvent:
		return InterimEvent(e)
	}
	panic("ferry: an engine emitted an event the API does not know")
}
