package ferrytest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// An Option changes how a [Server] answers. Options combine freely; pass
// them to [NewServer].
//
// Options that take a count (times) affect only the first times requests
// they apply to. Every such option keeps its own count, used up only by the
// requests it actually changes. A request for the resource meets them in
// this order, and the first one that answers it ends the request:
// [SlowFirstByte] (delays, does not answer), [RetryAfter], [RefuseHEAD] (HEAD
// only), [Status], then the normal answer, whose body [DropAfter], [Stall],
// [Throttle], [WrongContentRange] and [GzipRanged] may alter.
type Option func(*config)

type config struct {
	errs []string

	size        int64
	changedSize int64 // < 0: same as size
	seed        uint64

	http2, tls bool

	acceptRanges bool
	ignoreRange  bool

	etag             string // opaque tag without quotes; "" means derived
	weakETag         bool
	noValidators     bool
	lastModifiedOnly bool
	changeAfter      int // < 0: never

	refuseHEAD    int
	slowFirstByte time.Duration

	retryStatus int
	retryValue  string
	retryTimes  int

	status      int
	statusTimes int

	dropAfter int64
	dropTimes int

	stallAfter int64
	stallFor   time.Duration
	stallTimes int

	throttle int64

	wrongContentRange int
	gzipRanged        bool

	redirects int
	wrappers  []func(http.Handler) http.Handler
}

func defaultConfig() *config {
	return &config{
		size:         1 << 20,
		changedSize:  -1,
		seed:         1,
		acceptRanges: true,
		changeAfter:  -1,
	}
}

func (c *config) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// checked is an option that applies set when its arguments are ok, and
// otherwise records the error, which New reports.
func checked(ok bool, set func(c *config), format string, args ...any) Option {
	return func(c *config) {
		if !ok {
			c.errorf(format, args...)
			return
		}
		set(c)
	}
}

// Size sets the size in bytes of the resource (default 1 MiB). The content is
// generated as it is sent, so even a resource of many GiB costs no memory.
func Size(n int64) Option {
	return checked(n >= 0, func(c *config) { c.size = n },
		"Size(%d): negative size", n)
}

// Seed selects the content (default 1). Servers with the same seed, size and
// version serve the same bytes, and servers with different seeds serve
// different bytes and different default ETags.
func Seed(n uint64) Option {
	return func(c *config) { c.seed = n }
}

// HTTP2 makes the server speak HTTP/2 over cleartext TCP with prior knowledge
// (h2c) as well as HTTP/1.1. [Server.Client] then speaks only h2c, so
// every request it sends arrives with Proto "HTTP/2.0". With [TLS], the
// server already speaks HTTP/2, and HTTP2 changes nothing.
func HTTP2() Option {
	return func(c *config) { c.http2 = true }
}

// TLS serves HTTPS with httptest's self-signed certificate, offering
// HTTP/2 and HTTP/1.1 through ALPN. [Server.URL] starts with "https://", and
// [Server.Client] trusts the certificate and negotiates HTTP/2.
func TLS() Option {
	return func(c *config) { c.tls = true }
}

// AcceptRanges(false) turns Range support off: no response carries an
// Accept-Ranges header, and every GET is answered 200 with the full body
// whatever its Range and If-Range headers say. AcceptRanges(true) is the
// default.
func AcceptRanges(ok bool) Option {
	return func(c *config) { c.acceptRanges = ok }
}

// IgnoreRange makes a server that claims Range support and does not deliver:
// responses carry "Accept-Ranges: bytes", but every GET is answered 200 with
// the full body whatever its Range header says, even an unsatisfiable one.
func IgnoreRange() Option {
	return func(c *config) { c.ignoreRange = true }
}

// ETag sets the opaque tag of the strong ETag of the resource: the server
// sends `ETag: "s"`. s must not contain a double quote. After the change made
// by [ChangeETagAfter], the ETag is "s-v2". By default the ETag is derived
// from the seed and the version, like "v1-1b2c3d4e5f60718a".
func ETag(s string) Option {
	return checked(s != "" && !strings.ContainsAny(s, "\"\x00\r\n"), func(c *config) { c.etag = s },
		"ETag(%q): an ETag needs a non-empty tag without quotes or control characters", s)
}

// WeakETag sends the ETag as a weak validator, W/"...". A weak ETag never
// satisfies If-Range (RFC 9110 section 13.1.5), whether the client sends it
// with or without the W/ prefix: a ranged GET carrying it in If-Range gets
// 200 and the full body. Last-Modified is still sent and still satisfies
// If-Range.
func WeakETag() Option {
	return func(c *config) { c.weakETag = true }
}

// NoValidators sends neither ETag nor Last-Modified. Any If-Range then fails:
// a ranged GET with If-Range gets 200 and the full body; one without If-Range
// gets its 206.
func NoValidators() Option {
	return func(c *config) { c.noValidators = true }
}

// LastModifiedOnly sends Last-Modified and no ETag. If-Range then succeeds
// only with the exact Last-Modified date.
func LastModifiedOnly() Option {
	return func(c *config) { c.lastModifiedOnly = true }
}

// ChangeETagAfter replaces the resource once n GET requests have reached it
// (GETs answered by [RetryAfter] or [Status] do not count). GET number n+1
// and later, and every HEAD from then on, see version 2: other bytes, the
// size set by [ChangedSize] (default: unchanged), another ETag and a later
// Last-Modified. An If-Range naming version 1 then fails, so a resuming
// client gets 200 and the full body of version 2. [Server.Size],
// [Server.SHA256] and [Server.ETag] follow the change. ChangeETagAfter(0)
// serves version 2 from the start.
func ChangeETagAfter(n int) Option {
	return checked(n >= 0, func(c *config) { c.changeAfter = n },
		"ChangeETagAfter(%d): negative count", n)
}

// ChangedSize sets the size of version 2 of the resource, the one served
// after the change made by [ChangeETagAfter]. Without ChangedSize, both
// versions have the same size.
func ChangedSize(n int64) Option {
	return checked(n >= 0, func(c *config) { c.changedSize = n },
		"ChangedSize(%d): negative size", n)
}

// RefuseHEAD answers every HEAD request with status (such as 405, 403 or
// 501), no body, and neither ETag nor Last-Modified nor Accept-Ranges. A 405
// carries "Allow: GET". GET is unaffected.
func RefuseHEAD(status int) Option {
	return checked(validStatus(status), func(c *config) { c.refuseHEAD = status },
		"RefuseHEAD(%d): not a final status code", status)
}

// SlowFirstByte waits d before answering each GET and HEAD of the resource,
// so the client sees no response headers for d. If the client gives up
// first, the server stops waiting and sends nothing.
func SlowFirstByte(d time.Duration) Option {
	return func(c *config) { c.slowFirstByte = d }
}

// RetryAfter answers the first times requests for the resource, GET and HEAD
// alike, with status (typically 429 or 503), the header "Retry-After: value"
// (value is a number of seconds or an HTTP-date, sent as given), no
// validators, and a short text/plain body. Later requests are answered
// normally.
func RetryAfter(status int, value string, times int) Option {
	return checked(validStatus(status) && times >= 0, func(c *config) { c.retryStatus, c.retryValue, c.retryTimes = status, value, times },
		"RetryAfter(%d, %q, %d): bad status or count", status, value, times)
}

// Status answers the first times GET requests for the resource with code
// (such as 500 or 404), no validators and a short text/plain body (no body
// for 204 and 304). HEAD requests and later GETs are answered normally.
func Status(code int, times int) Option {
	return checked(validStatus(code) && times >= 0, func(c *config) { c.status, c.statusTimes = code, times },
		"Status(%d, %d): bad status or count", code, times)
}

// DropAfter cuts the first times GET responses that have a body (200 or 206)
// after n body bytes: the client gets the status and headers, including the
// full Content-Length, then exactly n bytes, then an error from the body
// read (io.ErrUnexpectedEOF over HTTP/1.1, a stream reset over HTTP/2). A
// body of n bytes or fewer is sent whole and the response completes normally
// (the count is still used up). With [GzipRanged], n counts compressed bytes.
func DropAfter(n int64, times int) Option {
	return checked(n >= 0 && times >= 0, func(c *config) { c.dropAfter, c.dropTimes = n, times },
		"DropAfter(%d, %d): negative argument", n, times)
}

// Stall pauses the first times GET responses that have a body (200 or 206):
// the client gets the headers and the first after body bytes, then nothing
// for d, then the rest of the body as usual. If the client gives up during
// the pause, the server stops. A body of after bytes or fewer is sent without
// a pause (the count is still used up). With [GzipRanged], after counts
// compressed bytes.
func Stall(after int64, d time.Duration, times int) Option {
	return checked(after >= 0 && d >= 0 && times >= 0, func(c *config) { c.stallAfter, c.stallFor, c.stallTimes = after, d, times },
		"Stall(%d, %v, %d): negative argument", after, d, times)
}

// Throttle sends every response body at about bytesPerSec bytes per second,
// in small flushed chunks (at most a tenth of a second's worth each), so the
// body arrives slowly but never stalls.
func Throttle(bytesPerSec int64) Option {
	return checked(bytesPerSec > 0, func(c *config) { c.throttle = bytesPerSec },
		"Throttle(%d): rate must be positive", bytesPerSec)
}

// WrongContentRange makes the server lie in its first times 206 responses:
// for a request of bytes a-b, the body holds exactly bytes a through b (and
// Content-Length says so), but the header reads
// "Content-Range: bytes (a+1)-(b+1)/size", the whole range shifted by one.
// The end may then equal the size, which no honest server sends.
func WrongContentRange(times int) Option {
	return checked(times >= 0, func(c *config) { c.wrongContentRange = times },
		"WrongContentRange(%d): negative count", times)
}

// GzipRanged makes a broken server that compresses partial content: every
// 206 response carries "Content-Encoding: gzip" whatever Accept-Encoding
// says, no Content-Length, and a gzip stream whose decompressed bytes are
// the requested range. Content-Range still counts identity (uncompressed)
// bytes. Full (200) responses are not compressed.
func GzipRanged() Option {
	return func(c *config) { c.gzipRanged = true }
}

// Redirect adds a chain of n redirects in front of the resource: a GET or
// HEAD of /redirect/k, for 1 <= k <= n, gets 302 Found with
// "Location: /redirect/k-1", and /redirect/1 redirects to /file. A client
// starting at URL+"/redirect/n" thus follows n redirects. Redirects are not
// subject to the fault options and do not count as requests for the
// resource. Without Redirect, /redirect/... serves the resource like any
// other path.
func Redirect(n int) Option {
	return checked(n >= 0, func(c *config) { c.redirects = n },
		"Redirect(%d): negative count", n)
}

// Handler wraps the server's handler with wrap, to add faults of one's own.
// The wrapped handler sees every request, including /healthz and redirects;
// [Server.Requests] logs what the client got from it. With several Handler
// options, the first one given is the outermost.
func Handler(wrap func(http.Handler) http.Handler) Option {
	return checked(wrap != nil, func(c *config) { c.wrappers = append(c.wrappers, wrap) },
		"Handler(nil)")
}

func validStatus(code int) bool { return code >= 200 && code <= 599 }
