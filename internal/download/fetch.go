package download

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/retry"
	"github.com/ferryhq/ferry/internal/transfer"
)

type probeResult struct {
	size      int64 // -1 unknown
	ranges    bool
	validator httprange.Validator
	encoding  string
	proto     string
}

// newRequest builds a request with the job's headers, a redirect hook that
// reports to this task, and an httptrace recorder.
func (r *run) newRequest(ctx context.Context, method string) (*http.Request, *transfer.Recorder, error) {
	ctx = transfer.WithRedirectHook(ctx, r.checkRedirect)
	req, err := http.NewRequestWithContext(ctx, method, r.j.URL, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range r.j.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "ferry")
	}
	rec := transfer.NewRecorder(req)
	return req.WithContext(rec.WithContext(req.Context())), rec, nil
}

func (r *run) checkRedirect(req *http.Request, via []*http.Request) error {
	policy := r.j.CheckRedirect
	if policy == nil {
		policy = transfer.DefaultRedirectPolicy
	}
	if err := policy(req, via); err != nil {
		// Refused by policy: final, whatever the error says about retrying.
		return &redirectError{err}
	}
	prev := via[len(via)-1]
	status := 0
	if req.Response != nil {
		status = req.Response.StatusCode
	}
	r.j.Emit(transfer.RedirectEvent{StatusCode: status, From: prev.URL.String(), To: req.URL.String()})
	return nil
}

func (r *run) finishTxn(rec *transfer.Recorder, body int64, err error) {
	r.j.Emit(transfer.MetricsEvent{Transaction: rec.Finish(body, err)})
}

// do sends req; a transport failure of these idempotent requests is transient.
func (r *run) do(req *http.Request, rec *transfer.Recorder) (*http.Response, error) {
	resp, err := r.j.Client.Do(req)
	if err != nil {
		r.finishTxn(rec, 0, err)
		if req.Context().Err() != nil {
			return nil, context.Cause(req.Context())
		}
		if re, ok := errors.AsType[*redirectError](err); ok {
			return nil, re.err
		}
		return nil, &transfer.Transient{Err: err}
	}
	rec.Response(resp)
	return resp, nil
}

func statusError(resp *http.Response) *transfer.StatusError {
	return &transfer.StatusError{
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		RetryAfter: retry.ParseRetryAfter(resp.Header.Get("Retry-After"), timeNow()),
	}
}

// doProbe asks with HEAD and falls back to GET bytes=0-0 when HEAD is refused
// (some origins and presigned URLs only allow GET).
func (r *run) doProbe(ctx context.Context) (probeResult, error) {
	req, rec, err := r.newRequest(ctx, http.MethodHead)
	if err != nil {
		return probeResult{}, err
	}
	resp, err := r.do(req, rec)
	if err != nil {
		return probeResult{}, err
	}
	resp.Body.Close()
	r.finishTxn(rec, 0, nil)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return probeResult{
			size:      resp.ContentLength,
			ranges:    acceptsRanges(resp.Header),
			validator: httprange.FromResponse(resp.Header),
			encoding:  resp.Header.Get("Content-Encoding"),
			proto:     resp.Proto,
		}, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return probeResult{}, statusError(resp)
	}
	if se := statusError(resp); se.Retryable() {
		return probeResult{}, se
	}
	return r.probeGET(ctx)
}

func (r *run) probeGET(ctx context.Context) (probeResult, error) {
	req, rec, err := r.newRequest(ctx, http.MethodGet)
	if err != nil {
		return probeResult{}, err
	}
	req.Header.Set("Range", httprange.Range(0, 0))
	resp, err := r.do(req, rec)
	if err != nil {
		return probeResult{}, err
	}
	// Never read a body here: a server that ignores Range would send it all.
	resp.Body.Close()
	r.finishTxn(rec, 0, nil)
	p := probeResult{
		size:      -1,
		validator: httprange.FromResponse(resp.Header),
		encoding:  resp.Header.Get("Content-Encoding"),
		proto:     resp.Proto,
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		cr, err := httprange.ParseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || cr.First != 0 {
			// A lying range answer: learn nothing, the fetch will re-check.
			return p, nil
		}
		p.size, p.ranges = cr.Size, true
	case http.StatusOK:
		p.size = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		if cr, err := httprange.ParseContentRange(resp.Header.Get("Content-Range")); err == nil && cr.Size == 0 {
			p.size, p.ranges = 0, true
		}
	default:
		return probeResult{}, statusError(resp)
	}
	return p, nil
}

func acceptsRanges(h http.Header) bool {
	for _, v := range h.Values("Accept-Ranges") {
		for _, u := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(u), "bytes") {
				return true
			}
		}
	}
	return false
}

func identity(enc string) bool {
	return enc == "" || strings.EqualFold(enc, "identity")
}

// fetchOnce makes one GET for the bytes after offset and copies what it may
// into the .part file. It returns the bytes written and whether the file is
// complete.
func (r *run) fetchOnce(ctx context.Context) (int64, bool, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wd := startWatchdog(cancel, r.j.IdleTimeout, r.j.MinSpeed, r.j.MinSpeedTime)
	defer wd.done()

	req, rec, err := r.newRequest(actx, http.MethodGet)
	if err != nil {
		return 0, false, err
	}
	rec.OnActivity = wd.kick
	ranged := r.offset > 0 && !r.fullOnly
	if ranged {
		// RFC 9110 §14.2, §13.1.5: ask for the rest, but only if it is still
		// the same representation; otherwise the server sends it all (200).
		req.Header.Set("Range", httprange.Range(r.offset, -1))
		// A range of an encoded form cannot be spliced onto identity bytes.
		req.Header.Del("Accept-Encoding")
		if ir := r.st.Validator.IfRange(); ir != "" {
			req.Header.Set("If-Range", ir)
		}
	}
	resp, err := r.do(req, rec)
	if err != nil {
		return 0, false, r.attemptErr(actx, err)
	}
	defer resp.Body.Close()
	if r.resumedFrom < 0 {
		r.resumedFrom = r.offset
	}
	r.res.Proto = resp.Proto
	r.j.Emit(transfer.ResponseEvent{StatusCode: resp.StatusCode, Proto: resp.Proto, Header: resp.Header.Clone(), ContentLength: resp.ContentLength})

	want := int64(-1)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !ranged {
			r.finishTxn(rec, 0, transfer.ErrBadContentRange)
			return 0, false, transfer.ErrBadContentRange
		}
		cr, err := httprange.ParseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || cr.First != r.offset || (r.st.Size >= 0 && cr.Size != r.st.Size) ||
			(resp.ContentLength >= 0 && resp.ContentLength != cr.Len()) {
			return 0, false, r.badRange(rec)
		}
		if !identity(resp.Header.Get("Content-Encoding")) {
			// The range would be of encoded bytes; never splice those in.
			return 0, false, r.badRange(rec)
		}
		if r.st.Size < 0 && cr.Size >= 0 {
			r.st.Size = cr.Size
			r.j.Meter.SetExpected(cr.Size)
		}
		want = cr.Len()
	case http.StatusOK:
		if r.offset > 0 {
			reason := "the server sent the whole resource instead of a range"
			if ranged && req.Header.Get("If-Range") != "" {
				reason = "the resource changed (If-Range failed)"
			}
			if err := r.restart(reason); err != nil {
				return 0, false, err
			}
		}
		r.st.Validator = httprange.FromResponse(resp.Header)
		r.st.Size = resp.ContentLength
		r.st.Blind = false
		if err := r.j.Journal.Save(&r.st); err != nil {
			return 0, false, err
		}
		r.j.Meter.Reset(0, r.st.Size)
		want = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		r.finishTxn(rec, 0, nil)
		cr, err := httprange.ParseContentRange(resp.Header.Get("Content-Range"))
		switch {
		case err == nil && cr.Size >= 0 && cr.Size == r.offset:
			r.st.Size = cr.Size // already complete
			return 0, true, nil
		case err == nil && cr.Size >= 0 && cr.Size < r.offset:
			// The resource shrank: what we hold is not a prefix of it.
			return 0, false, r.restart("the resource is shorter than the bytes already fetched")
		}
		return 0, false, transfer.ErrRangeNotSatisfiable
	default:
		se := statusError(resp)
		r.finishTxn(rec, 0, se)
		return 0, false, se
	}

	n, err := r.copy(actx, resp.Body, wd)
	if err == nil && want >= 0 && n != want {
		err = transfer.ErrShortBody
	}
	r.finishTxn(rec, n, err)
	if err != nil {
		return n, false, r.attemptErr(actx, err)
	}
	r.badRanges = 0
	if r.st.Size < 0 {
		r.st.Size = r.offset // no length given: the body's end is the end
	}
	return n, r.offset == r.st.Size, nil
}

// badRange handles a 206 that does not answer the request. One can be a
// glitch; two in a row mean the server's ranges cannot be trusted, and the
// download falls back to whole-resource GETs.
func (r *run) badRange(rec *transfer.Recorder) error {
	r.finishTxn(rec, 0, transfer.ErrBadContentRange)
	r.badRanges++
	if r.badRanges >= 2 {
		r.fullOnly = true
	}
	return transfer.ErrBadContentRange
}

// attemptErr turns what broke an attempt into the error to act on: the
// watchdog's verdict, the caller's cancellation, or a transient failure.
func (r *run) attemptErr(actx context.Context, err error) error {
	if cause := context.Cause(actx); cause != nil && actx.Err() != nil {
		return cause
	}
	var rt retry.Retryable
	if errors.As(err, &rt) {
		return err
	}
	return &transfer.Transient{Err: err}
}

// copy moves the body into the .part file at offset.
func (r *run) copy(ctx context.Context, body io.Reader, wd *watchdog) (int64, error) {
	var total int64
	for {
		n, rerr := body.Read(r.buf)
		if n > 0 {
			wd.add(n)
			if err := r.wait(ctx, n); err != nil {
				return total, err
			}
			if err := r.write(r.buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

func (r *run) wait(ctx context.Context, n int) error {
	if r.j.Limiter == nil {
		return nil
	}
	for n > 0 {
		k := min(n, r.j.Limiter.Burst())
		if err := r.j.Limiter.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (r *run) write(p []byte) error {
	if _, err := r.part.WriteAt(p, r.offset); err != nil {
		return &writeError{err}
	}
	if r.hash != nil {
		if err := r.catchUpHash(); err != nil {
			return err
		}
		r.hash.Write(p)
		r.hashed += int64(len(p))
	}
	r.offset += int64(len(p))
	r.j.Meter.Add(int64(len(p)))
	if r.offset-r.flushed >= writebackChunk {
		startWriteback(r.part, r.flushed, r.offset-r.flushed)
		r.flushed = r.offset
	}
	return nil
}

// writebackChunk is how much is written before the kernel is asked to start
// writing it out.
const writebackChunk = 16 << 20

// catchUpHash feeds the hash the bytes of the .part file it has not seen
// (those kept from an earlier run), so the digest covers the whole result.
func (r *run) catchUpHash() error {
	if r.hashed >= r.offset {
		return nil
	}
	n, err := io.Copy(r.hash, io.NewSectionReader(r.part, r.hashed, r.offset-r.hashed))
	r.hashed += n
	return err
}

// writeError is a local disk failure: never retried.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// redirectError carries the redirect policy's refusal out of http.Client.
type redirectError struct{ err error }

func (e *redirectError) Error() string { return e.err.Error() }
func (e *redirectError) Unwrap() error { return e.err }
