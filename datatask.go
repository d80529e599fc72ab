package ferry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ferryhq/ferry/internal/data"
)

// DataRequest describes a data task: one request of any method, as
// URLSession's data task, whose response comes back in the task's Result
// (StatusCode, Header, and the body in Response) or goes to Writer.
//
// A data task completes with whatever the server answered: a 404 is a
// response, not an error. The task fails only when no response came, and
// when it retries, it retries only a request that may be sent again (its
// method is idempotent, Idempotent says so, or the server did not act on
// it: it was not reached, or answered 408, 425, 429 or 503 with
// Retry-After). A status that says to come back (408, 425, 429, 5xx but
// 501 and 505) is retried then, and the last one is the result when the
// retries run out.
type DataRequest struct {
	// Method is the request's method; "" means GET, or POST with a body.
	Method string
	// URL is the http or https resource.
	URL string
	// Header is added to the request (after the session's); credentials
	// among it go only to the URL's origin (see Config.Header).
	Header http.Header
	// The request body is one of Body, BodyReader and BodyFile, or none.
	// Body and BodyFile are read anew for each attempt (BodyFile streamed
	// from disk, with its length); BodyReader is read once, so a request
	// with it is never sent twice.
	Body       []byte
	BodyReader io.Reader
	BodyFile   string
	// Request, if set, is the request as net/http has it: its method, URL,
	// header and body are the task's (its GetBody, when set, lets it be
	// sent again). Method, URL, Header and the body fields above must then
	// be empty. Its context is not used: the task's is.
	Request *http.Request
	// MaxResponseSize bounds the response body kept in Result.Response.
	// 0 means 64 MiB. A larger body fails the task with a
	// *ResponseTooLargeError.
	MaxResponseSize int64
	// Writer, if set, receives the response body instead of
	// Result.Response; once it has been given bytes, the request is not
	// sent again.
	Writer io.Writer
	// Idempotent says the request may be sent again though its method is
	// not idempotent: a POST with an idempotency key, for instance.
	Idempotent bool
	// RateLimit caps this task's bytes per second (0: no cap of its own),
	// within the session's Config.RateLimit.
	RateLimit int64
}

// ResponseTooLargeError reports a response body over
// DataRequest.MaxResponseSize.
type ResponseTooLargeError struct{ Max int64 }

func (e *ResponseTooLargeError) Error() string { return (*data.TooLargeError)(e).Error() }

// Validate reports whether the request would be taken, with the error
// Session.Data would return, without sending anything.
func (r *DataRequest) Validate() error {
	_, err := r.job()
	return err
}

// job is the engine's view of r: method, URL, header and body.
func (r *DataRequest) job() (*dataJob, error) {
	j := &dataJob{method: r.Method, url: r.URL, header: r.Header}
	bodies := 0
	for _, set := range []bool{r.Body != nil, r.BodyReader != nil, r.BodyFile != ""} {
		if set {
			bodies++
		}
	}
	if bodies > 1 {
		return nil, fmt.Errorf("%w: more than one of Body, BodyReader and BodyFile", ErrInvalidRequest)
	}
	switch {
	case r.Request != nil:
		if r.Method != "" || r.URL != "" || r.Header != nil || bodies > 0 {
			return nil, fmt.Errorf("%w: Request goes without Method, URL, Header and a body of its own", ErrInvalidRequest)
		}
		j.method, j.url, j.header = r.Request.Method, r.Request.URL.String(), r.Request.Header
		j.body = requestBody(r.Request)
	case r.Body != nil:
		j.body = data.Bytes(r.Body)
	case r.BodyReader != nil:
		j.body = data.Once(r.BodyReader, readerSize(r.BodyReader))
	case r.BodyFile != "":
		b, err := fileBody(r.BodyFile)
		if err != nil {
			return nil, err
		}
		j.body = b
	}
	if j.method == "" {
		j.method = http.MethodGet
		if j.body != nil {
			j.method = http.MethodPost
		}
	}
	if !validMethod(j.method) {
		return nil, fmt.Errorf("%w: method %q", ErrInvalidRequest, j.method)
	}
	if err := checkURL(j.url); err != nil {
		return nil, err
	}
	if r.MaxResponseSize < 0 {
		return nil, &LimitError{Field: "MaxResponseSize", Value: r.MaxResponseSize}
	}
	if err := checkRateLimit(r.RateLimit); err != nil {
		return nil, err
	}
	return j, nil
}

// dataJob is what a DataRequest asks for, checked.
type dataJob struct {
	method, url string
	header      http.Header
	body        *data.Body
}

// validMethod reports whether m is an HTTP token (RFC 9110 §9.1).
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := range len(m) {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// requestBody is the body of a net/http request: sent again through
// GetBody when it has one, else once.
func requestBody(req *http.Request) *data.Body {
	if req.Body == nil || req.Body == http.NoBody {
		return nil
	}
	size := req.ContentLength
	if size == 0 {
		size = -1 // net/http's "unknown" for a body it did not measure
	}
	if req.GetBody == nil {
		return data.Once(req.Body, size)
	}
	first := true
	return &data.Body{Size: size, Open: func() (io.ReadCloser, error) {
		if first {
			first = false
			return req.Body, nil
		}
		return req.GetBody()
	}}
}

// readerSize is the length of what r holds when r knows it, as net/http
// measures the bodies it is given; -1 otherwise.
func readerSize(r io.Reader) int64 {
	switch v := r.(type) {
	case *bytes.Buffer:
		return int64(v.Len())
	case *bytes.Reader:
		return int64(v.Len())
	case *strings.Reader:
		return int64(v.Len())
	}
	return -1
}

// fileBody is the body of the regular file at path (data.File), refused
// as an invalid request when there is none.
func fileBody(path string) (*data.Body, error) {
	b, err := data.File(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	return b, nil
}

// NewData creates a suspended data task; call Resume to start it.
func (s *Session) NewData(ctx context.Context, req DataRequest) (*Task, error) {
	j, err := req.job()
	if err != nil {
		return nil, err
	}
	if s.bg != nil {
		return nil, fmt.Errorf("%w: data tasks run in the program, not in a background session", ErrInvalidRequest)
	}
	return s.newTask(ctx, &dataWork{s: s, req: req, job: j})
}

// Data starts a data task and returns its running task.
func (s *Session) Data(ctx context.Context, req DataRequest) (*Task, error) {
	return started(s.NewData(ctx, req))
}

// dataWork runs the data engine for a task.
type dataWork struct {
	s   *Session
	req DataRequest
	job *dataJob
}

func (w *dataWork) run(ctx context.Context, t *Task) (*Result, error) {
	res, err := data.Run(ctx, &data.Job{
		Env:        w.s.env(t, w.job.url, w.job.header, w.req.RateLimit),
		Method:     w.job.method,
		Body:       w.job.body,
		Idempotent: w.req.Idempotent,
		MaxBody:    w.req.MaxResponseSize,
		Writer:     w.req.Writer,
	})
	if err != nil {
		return nil, err
	}
	return &Result{
		URL: res.URL, StatusCode: res.StatusCode, Header: res.Header, Response: res.Body,
		Downloaded: res.Received, Uploaded: res.Sent, Size: res.Received, Proto: res.Proto,
	}, nil
}

// A data task keeps nothing to resume from or to remove.
func (w *dataWork) resumeData() (*ResumeData, error) { return nil, ErrNotResumable }
func (w *dataWork) discard()                         {}
