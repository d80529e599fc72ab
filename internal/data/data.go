// Package data runs data tasks: one HTTP request of any method, with an
// optional body, whose response body comes back in memory (up to a bound)
// or goes to a writer. It is URLSession's data task, and the plain upload
// (a file as the raw body of a PUT or POST) is one with a file for a body.
//
// A data task completes with whatever the server answered, as URLSession's
// does: a 404 is a response, not an error. Only failures to get a response
// are errors, and statuses that say to come back (503, 429, ...) are
// retried first when the request may be sent again: its method is
// idempotent, the caller said it is safe to repeat, or the server did not
// act on it (transfer.Unprocessed).
package data

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// DefaultMaxBody bounds a response body kept in memory when the job sets
// no bound of its own.
const DefaultMaxBody = 64 << 20

// Body is a request body that can be read again from its start for each
// attempt.
type Body struct {
	// Open returns the body from its start. A body that can be read only
	// once returns an error on its second call (ErrBodyUsed).
	Open func() (io.ReadCloser, error)
	// Size is its length in bytes; -1: unknown (sent chunked).
	Size int64
	once bool // made by Once: never sent again
}

// ErrBodyUsed is what opening a one-shot body a second time returns: the
// request cannot be sent again.
var ErrBodyUsed = errors.New("ferry: the request body can be read only once")

// Once is the Body of r, which can be read once.
func Once(r io.Reader, size int64) *Body {
	var used atomic.Bool
	return &Body{Size: size, once: true, Open: func() (io.ReadCloser, error) {
		if used.Swap(true) {
			return nil, ErrBodyUsed
		}
		return io.NopCloser(r), nil
	}}
}

// Bytes is the Body of b.
func Bytes(b []byte) *Body {
	return &Body{Size: int64(len(b)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

// Job is one data task.
type Job struct {
	*send.Env
	// Method is the request's method; "" means GET.
	Method string
	// Body is the request body; nil: none.
	Body *Body
	// Idempotent says the request may be sent again though its method is
	// not idempotent (a POST with an idempotency key, say).
	Idempotent bool
	// Upload makes the task's progress count the request body sent, for
	// plain uploads; otherwise it counts the response body received.
	Upload bool
	// MaxBody bounds the response body kept in memory; ≤ 0:
	// DefaultMaxBody. A larger body fails the task with a *TooLargeError.
	MaxBody int64
	// Writer, if set, receives the response body instead of memory. Once
	// it has been given bytes, the request is not sent again.
	Writer io.Writer
	// Hash asks for the SHA-256 of the request body sent (Result.SHA256).
	Hash bool
	// Fail makes a final status other than 2xx fail the task with a
	// *transfer.StatusError, as an upload's does; otherwise it is the
	// result.
	Fail bool
}

// Result is what came back.
type Result struct {
	// URL is the response's, after redirects.
	URL        string
	StatusCode int
	Status     string
	Header     http.Header
	Proto      string
	// Body is the response body, unless it went to Job.Writer.
	Body []byte
	// Sent is the request body's bytes, Received the response body's.
	Sent, Received int64
	// SHA256 is the hex SHA-256 of the request body, with Job.Hash.
	SHA256 string
}

// TooLargeError reports a response body over Job.MaxBody.
type TooLargeError struct{ Max int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("ferry: the response body is larger than %d bytes", e.Max)
}

// Run sends the request until it gets a response, or gives up.
func Run(ctx context.Context, j *Job) (*Result, error) {
	j.Init()
	method := j.Method
	if method == "" {
		method = http.MethodGet
	}
	repeatable := j.Idempotent || idempotent(method)
	r := j.Retrier()
	var last *Result // the last answer of a status retried
	for {
		res, wrote, err := j.attempt(ctx, method)
		if err == nil {
			return j.answered(ctx, res)
		}
		// After a redirect a server did act, whatever came from where it
		// pointed: Unprocessed says so.
		unprocessed := transfer.Unprocessed(err)
		if _, ok := errors.AsType[*transfer.StatusError](err); ok && res != nil {
			last = res
			if !repeatable && !unprocessed {
				return j.answered(ctx, res) // sent once, answered
			}
		}
		switch {
		case wrote:
			err = &transfer.Final{Err: fmt.Errorf("the response body was partly written out: %w", err)}
		case j.Body != nil && j.Body.once:
			err = &transfer.Final{Err: err} // its body is gone
		case !repeatable && !unprocessed:
			err = &transfer.Final{Err: err}
		}
		if ferr := r.Failed(ctx, err, false); ferr != nil {
			if _, status := errors.AsType[*transfer.StatusError](ferr); last != nil && ctx.Err() == nil && status {
				return j.answered(ctx, last) // what the server said last
			}
			return nil, j.Failed(ctx, "request", ferr)
		}
	}
}

// answered is the task's outcome once res is the final answer.
func (j *Job) answered(ctx context.Context, res *Result) (*Result, error) {
	if j.Fail && (res.StatusCode < 200 || res.StatusCode > 299) {
		se := transfer.ResponseError(&http.Response{StatusCode: res.StatusCode, Status: res.Status, Header: res.Header})
		return nil, j.Failed(ctx, "upload", se)
	}
	return res, nil
}

// idempotent reports whether method may be sent twice to the same effect
// (RFC 9110 §9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// attempt sends the request once. A status that says to come back is
// returned as a *transfer.StatusError along with the response; wrote says
// Writer was given bytes.
func (j *Job) attempt(ctx context.Context, method string) (res *Result, wrote bool, err error) {
	err = j.Attempt(ctx, j.URL, func(actx context.Context, wd *watchdog.Watchdog) error {
		res, wrote, err = j.exchange(actx, wd, method)
		return err
	})
	return res, wrote, err
}

func (j *Job) exchange(ctx context.Context, wd *watchdog.Watchdog, method string) (*Result, bool, error) {
	var body io.ReadCloser
	var sent atomic.Int64
	var sum hash.Hash
	if j.Hash {
		sum = sha256.New()
	}
	// wrap is what the transport reads of a body opened from its start
	// (the first time, or again for a redirect that keeps it).
	wrap := func(b io.Reader) io.Reader {
		if sum != nil {
			sum.Reset()
			b = io.TeeReader(b, sum)
		}
		return &counting{r: j.paced(ctx, wd, b), n: &sent}
	}
	if j.Body != nil {
		var err error
		if body, err = j.Body.Open(); err != nil {
			return nil, false, err
		}
		defer body.Close()
	}
	var rd io.Reader
	if body != nil {
		rd = wrap(body)
	}
	x, err := j.NewRequest(ctx, wd, method, j.URL, rd)
	if err != nil {
		return nil, false, err
	}
	x.Sent = sent.Load
	if j.Body != nil {
		x.Req.ContentLength = j.Body.Size
		if j.Body.Size == 0 {
			x.Req.Body = http.NoBody
		}
		x.Req.GetBody = func() (io.ReadCloser, error) {
			// A redirect that keeps the body (307, 308) sends it again.
			b, err := j.Body.Open()
			if err != nil {
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{wrap(b), b}, nil
		}
	}
	if j.Upload {
		j.Meter.Reset(0, max(j.Body.size(), 0))
	}
	resp, err := x.Do()
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	res := &Result{
		URL: resp.Request.URL.String(), StatusCode: resp.StatusCode, Status: resp.Status,
		Header: resp.Header, Proto: resp.Proto, Sent: sent.Load(),
	}
	j.Emit(transfer.ResponseEvent{StatusCode: resp.StatusCode, Header: resp.Header.Clone(), Proto: resp.Proto})
	if !j.Upload {
		j.Meter.Reset(0, max(resp.ContentLength, 0))
	}
	limit := j.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	var buf bytes.Buffer
	if j.Writer == nil && resp.ContentLength > 0 && resp.ContentLength <= limit {
		buf.Grow(int(resp.ContentLength))
	}
	chunk := chunks.Get().(*[]byte)
	defer chunks.Put(chunk)
	wrote := false
	n, err := x.Pump(ctx, resp, resp.Body, resp.ContentLength, *chunk, func(p []byte) error {
		if j.Writer != nil {
			wrote = true
			if _, err := j.Writer.Write(p); err != nil {
				return &transfer.Final{Err: fmt.Errorf("write the response body: %w", err)}
			}
		} else {
			if int64(buf.Len()+len(p)) > limit {
				return &transfer.Final{Err: &TooLargeError{Max: limit}}
			}
			buf.Write(p)
		}
		if !j.Upload {
			j.Meter.Add(int64(len(p)))
		}
		return nil
	})
	// A HEAD's Content-Length, a 204's and a 304's describe no body here.
	hasBody := method != http.MethodHead && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified
	if err == nil && hasBody && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = transfer.ErrShortBody
	}
	x.Finish(n, err)
	if err != nil {
		return nil, wrote, err
	}
	res.Received = n
	if j.Writer == nil {
		res.Body = buf.Bytes()
	}
	if sum != nil {
		res.SHA256 = hex.EncodeToString(sum.Sum(nil))
	}
	if se := transfer.ResponseError(resp); se.Retryable() {
		return res, wrote, se
	}
	return res, wrote, nil
}

// chunks are the buffers response bodies are read through: a data task
// is often small and many run, so one is not made for each.
var chunks = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (b *Body) size() int64 {
	if b == nil {
		return 0
	}
	return b.Size
}

// paced is the request body r under the task's budget and watchdog; its
// bytes count as the task's progress for an upload.
func (j *Job) paced(ctx context.Context, wd *watchdog.Watchdog, r io.Reader) io.Reader {
	if j.Upload {
		return j.Metered(ctx, wd, r)
	}
	return j.Paced(ctx, wd, r)
}

// counting counts what is read through it.
type counting struct {
	r io.Reader
	n *atomic.Int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
