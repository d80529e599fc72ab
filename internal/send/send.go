// Package send is the one way ferry's engines talk to a server. An Env is
// what every engine receives for a task: the client, the task's URL and
// header, its limits and its event sink. Every request goes out through
// it, so that the task's header (credentials to its origin only), the
// User-Agent, the host slots, the idle watchdog and minimum speed, the
// bandwidth budget, the redirect hook, transaction metrics, and the
// classification of failures are each decided in one place.
package send

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/auth"

	"github.com/ferryhq/ferry/internal/pump"
	"github.com/ferryhq/ferry/internal/retry"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// UserAgent is sent when the task's header names none.
const UserAgent = "ferry"

// Env is how one task's requests are sent. The root package builds one per
// task; an engine adds only what its kind needs.
type Env struct {
	Client *http.Client
	// URL is the task's URL. Its origin owns the credentials in Header
	// (transfer.AddHeader).
	URL    string
	Header http.Header
	Retry  retry.Policy
	// IdleTimeout ends a request on which nothing moved for this long.
	IdleTimeout time.Duration
	// MinSpeed (bytes/s) over MinSpeedTime ends a request too slow to
	// finish; <= 0: none.
	MinSpeed     int64
	MinSpeedTime time.Duration
	// Limiter is the bandwidth budget the task's bytes wait for; nil:
	// unlimited.
	Limiter pump.Limiter
	// Slots, if set, bounds the requests in flight per host across the
	// tasks that share it.
	Slots watchdog.HostSlots
	// CheckRedirect is the user's redirect policy; nil follows up to 10.
	CheckRedirect transfer.RedirectFunc
	// Proxy is the client's proxy function, asked again for each request
	// so that its transaction says which proxy it went through (the
	// transport does not say, and asks it only for a new connection).
	Proxy func(*http.Request) (*url.URL, error)
	Meter *transfer.Meter
	Emit  func(transfer.Event) // must not block

	hopsMu sync.Mutex
	hops   map[hop]bool
}

// hop is one redirect a task followed.
type hop struct {
	status   int
	from, to string
}

// maxHops bounds the distinct redirects a task remembers; past it, every
// redirect is reported again.
const maxHops = 64

// Init fills in what a caller may leave out: a client, a meter and an
// event sink. An engine calls it once before its first request.
func (e *Env) Init() {
	if e.Client == nil {
		e.Client = &http.Client{CheckRedirect: transfer.CheckRedirect}
	}
	if e.Meter == nil {
		e.Meter = transfer.NewMeter()
	}
	if e.Emit == nil {
		e.Emit = func(transfer.Event) {}
	}
}

// Retrier applies the task's retry policy and reports each retry.
func (e *Env) Retrier() retry.Retrier { return transfer.NewRetrier(e.Retry, e.Emit) }

// Attempt runs f, one request to target, under the task's limits: a slot
// of target's host, and a watchdog for the idle timeout and the minimum
// speed (see watchdog.Attempt).
func (e *Env) Attempt(ctx context.Context, target string, f func(actx context.Context, wd *watchdog.Watchdog) error) error {
	host := ""
	if u, err := url.Parse(target); err == nil {
		host = u.Host
	}
	return watchdog.Attempt(ctx, host, watchdog.Limits{
		Slots: e.Slots, IdleTimeout: e.IdleTimeout, MinSpeed: e.MinSpeed, MinSpeedTime: e.MinSpeedTime,
	}, f)
}

// Exchange is one request and what came of it. Build it with NewRequest,
// adjust Req (protocol header fields, Range, a trace), send it with Do, and
// end it with Finish once the body has been read: each request reports one
// transaction, and each redirect hop one more.
type Exchange struct {
	Req *http.Request
	// Sent, if set, says how many bytes of the request body went out, for
	// the transaction's metrics.
	Sent func() int64

	env      *Env
	wd       *watchdog.Watchdog
	mu       sync.Mutex // rec: a redirect hop replaces it
	rec      *transfer.Recorder
	hops     int // redirects followed
	finished bool
}

// NewRequest builds a request of the task: its header (credentials only to
// its origin), a User-Agent, the redirect hook, and metrics whose activity
// feeds wd.
func (e *Env) NewRequest(ctx context.Context, wd *watchdog.Watchdog, method, target string, body io.Reader) (*Exchange, error) {
	x := &Exchange{env: e, wd: wd}
	ctx = transfer.WithRedirectHook(ctx, x.redirect(transfer.ReportRedirects(e.CheckRedirect, e.emitRedirect)))
	ctx = auth.WithTaskOrigin(ctx, e.URL)
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	transfer.AddHeader(req, e.Header, e.URL)
	setDefault(req.Header, "User-Agent", UserAgent)
	x.rec = x.recorder(req)
	x.Req = req.WithContext(x.traced(req.Context()))
	return x, nil
}

// setDefault sets h's field k to v unless it has one.
func setDefault(h http.Header, k, v string) {
	if h.Get(k) == "" {
		h.Set(k, v)
	}
}

// NewRanged is NewRequest for a GET whose bytes are stored as served: no
// content coding is asked for, since ranges are of the encoded form (RFC
// 9110 §14.2) and a resume must splice identity bytes.
func (e *Env) NewRanged(ctx context.Context, wd *watchdog.Watchdog, method, target string) (*Exchange, error) {
	x, err := e.NewRequest(ctx, wd, method, target, nil)
	if err != nil {
		return nil, err
	}
	x.Req.Header.Del("Accept-Encoding")
	return x, nil
}

func (x *Exchange) recorder(req *http.Request) *transfer.Recorder {
	rec := transfer.NewRecorder(req)
	rec.OnActivity = x.wd.Kick
	if x.env.Proxy != nil {
		if u, err := x.env.Proxy(req); err == nil {
			rec.Proxied(u)
		}
	}
	return rec
}

// traced attaches trace hooks that report to whichever recorder is
// current: a redirect hop starts a new one on the same context.
func (x *Exchange) traced(ctx context.Context) context.Context {
	ctx = transfer.TraceTo(ctx, func() *transfer.Recorder {
		x.mu.Lock()
		defer x.mu.Unlock()
		return x.rec
	})
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			x.env.Emit(transfer.InterimEvent{StatusCode: code, Header: http.Header(h).Clone()})
			return nil
		},
	})
}

// redirect wraps the task's redirect hook: a hop it allows ends the
// transaction of the request redirected and starts one for the next.
func (x *Exchange) redirect(policy transfer.RedirectFunc) transfer.RedirectFunc {
	return func(req *http.Request, via []*http.Request) error {
		if err := policy(req, via); err != nil {
			return err
		}
		next := x.recorder(req)
		x.mu.Lock()
		prev := x.rec
		x.rec = next
		x.hops++
		x.mu.Unlock()
		if req.Response != nil {
			prev.Response(req.Response)
		}
		x.env.Emit(transfer.MetricsEvent{Transaction: prev.Finish(0, nil)})
		x.env.Emit(transfer.RequestEvent{Method: req.Method, URL: req.URL.String(), Header: req.Header.Clone()})
		return nil
	}
}

// emitRedirect reports a redirect the first time the task follows it: a
// probe and its GET, or the segments of one download, all follow the same
// hops, and the task followed each once.
func (e *Env) emitRedirect(ev transfer.Event) {
	if r, ok := ev.(transfer.RedirectEvent); ok {
		h := hop{r.StatusCode, r.From, r.To}
		e.hopsMu.Lock()
		seen := e.hops[h]
		if !seen && len(e.hops) < maxHops {
			if e.hops == nil {
				e.hops = make(map[hop]bool)
			}
			e.hops[h] = true
		}
		e.hopsMu.Unlock()
		if seen {
			return
		}
	}
	e.Emit(ev)
}

// Do sends the request. A failure to get a response ends the exchange: the
// context's cause when it ended, a refused redirect as the policy's error,
// and otherwise a transfer.Transient (no answer came; the caller decides
// whether its request may be repeated).
func (x *Exchange) Do() (*http.Response, error) {
	x.env.Emit(transfer.RequestEvent{Method: x.Req.Method, URL: x.Req.URL.String(), Header: x.Req.Header.Clone()})
	resp, err := x.env.Client.Do(x.Req)
	if err != nil {
		x.Finish(0, err)
		if ctx := x.Req.Context(); ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if refusal, ok := transfer.RedirectRefusal(err); ok {
			return nil, refusal
		}
		x.mu.Lock()
		redirected := x.hops > 0
		x.mu.Unlock()
		if redirected {
			return nil, transfer.AfterRedirect(&transfer.Transient{Err: err})
		}
		return nil, &transfer.Transient{Err: err}
	}
	x.current().Response(resp)
	return resp, nil
}

func (x *Exchange) current() *transfer.Recorder {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.rec
}

// Finish reports the exchange's transaction: the response body bytes
// received and the error that ended it, if any. Only the first call counts.
func (x *Exchange) Finish(received int64, err error) {
	x.mu.Lock()
	if x.finished {
		x.mu.Unlock()
		return
	}
	x.finished = true
	x.mu.Unlock()
	m := x.current().Finish(received, err)
	if x.Sent != nil {
		m.RequestBodyBytes = x.Sent()
	}
	x.env.Emit(transfer.MetricsEvent{Transaction: m})
}

// Pump reads body (the response's, or a part of it) into buf and hands it
// to sink (see package pump) under the task's bandwidth budget; resp paces
// the reader, and left is what the body still sends (-1: unknown).
func (x *Exchange) Pump(ctx context.Context, resp *http.Response, body io.Reader, left int64, buf []byte, sink func([]byte) error) (int64, error) {
	return pump.Body(ctx, body, buf, sink, pump.Options{
		Watchdog: x.wd, Limiter: x.env.Limiter, Wakeup: pump.NewWakeup(x.current(), resp, left),
	})
}

// Failed is the error a task's run of op ends with: the context's cause
// once it ended (a suspension or a cancellation, for the task to read),
// and otherwise err as a *transfer.Error naming op and the task's URL,
// unless it is one already.
func (e *Env) Failed(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if _, ok := errors.AsType[*transfer.Error](err); ok || errors.Is(err, transfer.ErrCanceled) {
		return err
	}
	return &transfer.Error{Op: op, URL: e.URL, Err: err}
}
