package download

import (
	"context"
	"errors"
	"net/http"

	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// fetchOnce makes one GET for the bytes after offset and copies what it may
// into the .part file. It reports whether the file is complete.
func (r *run) fetchOnce(ctx context.Context) (complete bool, err error) {
	err = r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
		complete, err = r.get(actx, wd)
		return err
	})
	return complete, err
}

func (r *run) get(ctx context.Context, wd *watchdog.Watchdog) (bool, error) {
	x, err := r.newRequest(ctx, http.MethodGet, wd)
	if err != nil {
		return false, err
	}
	ranged := false
	if r.offset > 0 && !r.fullOnly {
		// RFC 9110 §14.2, §13.1.5: ask for the rest, but only if it is
		// still the same representation; otherwise the server sends it all
		// (200). Without a validator that can prove sameness, a range is
		// asked for only on the user's word (a -c resume).
		ir := r.st.Validator.IfRange()
		if ir != "" || r.st.Blind {
			ranged = true
			x.Req.Header.Set("Range", httprange.Range(r.offset, -1))
			if ir != "" {
				x.Req.Header.Set("If-Range", ir)
			}
		}
	}
	if r.offset > 0 && !ranged {
		if err := r.restart("the server sends no strong validator to resume against"); err != nil {
			return false, err
		}
	}
	resp, err := x.Do()
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	r.resumed(r.offset)
	r.res.Proto = resp.Proto
	r.j.Emit(transfer.ResponseEvent{StatusCode: resp.StatusCode, Proto: resp.Proto, Header: resp.Header.Clone(), ContentLength: resp.ContentLength})
	got := httprange.FromResponse(resp.Header)

	want := int64(-1)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !ranged {
			x.Finish(0, transfer.ErrBadContentRange)
			return false, transfer.ErrBadContentRange
		}
		asked := send.Want{First: r.offset, Last: -1, Size: r.st.Size}
		if !r.st.Blind {
			asked.Validator = r.st.Validator
		}
		cr, err := send.Partial(resp, asked)
		if errors.Is(err, send.ErrOtherVersion) {
			// A server that ignored If-Range but says what it sent: a
			// different representation must not be appended.
			x.Finish(0, nil)
			return false, r.restart("the resource changed (the range came from another version)")
		}
		if err != nil {
			// Not the bytes asked for, or bytes of an encoded form: never
			// splice them in.
			return false, r.badRange(x)
		}
		if r.st.Size < 0 && cr.Size >= 0 {
			r.st.Size = cr.Size
			r.j.Meter.SetExpected(cr.Size)
		}
		want = cr.Len()
	case http.StatusOK:
		if r.offset > 0 {
			reason := "the server sent the whole resource instead of a range"
			if ranged && x.Req.Header.Get("If-Range") != "" {
				reason = "the resource changed (If-Range failed)"
			}
			if err := r.restart(reason); err != nil {
				return false, err
			}
		}
		if !got.Same(r.probe.validator) {
			// Another version than the one probed: its digest is unknown.
			r.digest = reprDigest{}
			if resp.ContentLength < 0 {
				r.st.Size = -1
			}
		}
		if resp.ContentLength >= 0 {
			r.st.Size = resp.ContentLength
		}
		r.st.Validator = got
		r.st.Blind = false
		if err := r.j.Saved.Save(&r.st); err != nil {
			return false, err
		}
		r.j.Meter.Reset(0, r.st.Size)
		want = r.st.Size
	case http.StatusRequestedRangeNotSatisfiable:
		x.Finish(0, nil)
		return r.unsatisfiable(resp, got)
	default:
		se := transfer.ResponseError(resp)
		x.Finish(0, se)
		return false, se
	}

	n, err := x.Pump(ctx, resp, resp.Body, resp.ContentLength, r.buf, r.write)
	if err == nil && want >= 0 && n != want {
		err = transfer.ErrShortBody
	}
	x.Finish(n, err)
	if err != nil {
		return false, err
	}
	r.badRanges = 0
	if r.st.Size < 0 {
		r.st.Size = r.offset // no length given: the body's end is the end
	}
	return r.offset == r.st.Size, nil
}

// unsatisfiable handles a 416 (RFC 9110 §15.5.17). It means "complete" only
// when the resource's length, as the server states it, is exactly the bytes
// held and agrees with what is known of the resource; otherwise the resource
// changed and the download starts over.
func (r *run) unsatisfiable(resp *http.Response, got httprange.Validator) (bool, error) {
	cr, err := httprange.ParseContentRange(resp.Header.Get("Content-Range"))
	sameRep := got.Empty() || got.Same(r.st.Validator)
	switch {
	case err != nil || cr.Size < 0:
		return false, transfer.ErrRangeNotSatisfiable
	case cr.Size == r.offset && sameRep && (r.st.Size < 0 || r.st.Size == cr.Size):
		r.st.Size = cr.Size
		return true, nil
	}
	if err := r.restart("the resource is not the one whose bytes are held"); err != nil {
		return false, err
	}
	return false, nil
}

// badRange handles a 206 that does not answer the request. One can be a
// glitch; two in a row mean the server's ranges cannot be trusted, and the
// download falls back to whole-resource GETs.
func (r *run) badRange(x *send.Exchange) error {
	x.Finish(0, transfer.ErrBadContentRange)
	r.badRanges++
	if r.badRanges >= 2 {
		r.fullOnly = true
	}
	return transfer.ErrBadContentRange
}

func (r *run) write(p []byte) error {
	if r.j.Stream != nil {
		return r.writeStream(p)
	}
	if _, err := r.part.WriteAt(p, r.offset); err != nil {
		return &writeError{err}
	}
	if err := r.sums.add(r.part, r.offset, p); err != nil {
		return err
	}
	r.offset += int64(len(p))
	r.j.Meter.Add(int64(len(p)))
	if r.offset-r.flushed >= writebackChunk {
		startWriteback(r.part, r.flushed, r.offset-r.flushed)
		r.flushed = r.offset
	}
	return nil
}

// writeStream hands p, the bytes at offset, to the stream destination.
// Nothing is skipped or written twice, so the digests never read back.
func (r *run) writeStream(p []byte) error {
	if err := r.sums.add(nil, r.offset, p); err != nil {
		return err
	}
	if _, err := r.j.Stream.Write(p); err != nil {
		return &writeError{err}
	}
	r.offset += int64(len(p))
	r.j.Meter.Add(int64(len(p)))
	return nil
}

// writebackChunk is how much is written before the kernel is asked to start
// writing it out.
const writebackChunk = 16 << 20

// writeError is a local disk failure: never retried.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }
