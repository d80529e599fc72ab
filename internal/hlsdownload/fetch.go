package hlsdownload

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// span is the part of a resource a request asks for: n bytes at off, or
// the whole resource when n is 0.
type span struct{ off, n int64 }

// fetch runs one GET of target under the job's limits and hands the body
// (the span asked for) to sink piece by piece. It returns the bytes handed
// over, and the URL the answer came from (after redirects).
func (r *run) fetch(ctx context.Context, target string, sp span, sink func([]byte) error) (n int64, final *url.URL, err error) {
	err = r.j.Attempt(ctx, target, func(actx context.Context, wd *watchdog.Watchdog) error {
		var err error
		n, final, err = r.get(actx, wd, target, sp, sink)
		return err
	})
	return n, final, err
}

func (r *run) get(ctx context.Context, wd *watchdog.Watchdog, target string, sp span, sink func([]byte) error) (int64, *url.URL, error) {
	// Playlists are parsed and segments stored as served: no coding.
	x, err := r.j.NewRanged(ctx, wd, http.MethodGet, target)
	if err != nil {
		return 0, nil, err
	}
	if sp.n > 0 {
		x.Req.Header.Set("Range", httprange.Range(sp.off, sp.off+sp.n-1))
	}
	resp, err := x.Do()
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	r.proto.Store(&resp.Proto)
	var body io.Reader = resp.Body
	left := resp.ContentLength
	switch {
	case resp.StatusCode == http.StatusPartialContent && sp.n > 0:
		if _, err := send.Partial(resp, send.Want{First: sp.off, Last: sp.off + sp.n - 1, Size: -1}); err != nil {
			x.Finish(0, transfer.ErrBadContentRange)
			return 0, nil, transfer.ErrBadContentRange
		}
		body = io.LimitReader(body, sp.n)
		left = bodyLeft(resp.ContentLength, 0, sp.n)
	case resp.StatusCode == http.StatusOK && sp.n > 0:
		// The server sent the whole resource: skip to the range.
		if _, err := io.CopyN(io.Discard, body, sp.off); err != nil {
			x.Finish(0, err)
			return 0, nil, &transfer.Transient{Err: err}
		}
		body = io.LimitReader(body, sp.n)
		left = bodyLeft(resp.ContentLength, sp.off, sp.n)
	case resp.StatusCode == http.StatusOK:
	default:
		se := transfer.ResponseError(resp)
		x.Finish(0, se)
		return 0, nil, se
	}
	n, err := x.Pump(ctx, resp, body, left, make([]byte, 64<<10), func(p []byte) error {
		if err := sink(p); err != nil {
			return err
		}
		r.j.Meter.Add(int64(len(p)))
		return nil
	})
	if err == nil && sp.n > 0 && n != sp.n {
		err = transfer.ErrShortBody
	}
	x.Finish(n, err)
	return n, resp.Request.URL, err
}

// bodyLeft is what a body of length size (-1: unknown) still sends after
// skip bytes, at most n: a server may answer with less than was asked.
func bodyLeft(size, skip, n int64) int64 {
	if size < 0 {
		return -1
	}
	return max(0, min(n, size-skip))
}

// fetchSmall fetches a playlist or a key of at most limit bytes into
// memory, retrying; live counts a 404 or 410 as worth another try (a live
// playlist being republished). A larger answer is refused as soon as it
// passes limit, not read whole.
func (r *run) fetchSmall(ctx context.Context, target string, live bool, limit int) ([]byte, *url.URL, error) {
	rt := r.j.Retrier()
	for {
		var b []byte
		_, final, err := r.fetch(ctx, target, span{}, func(p []byte) error {
			if len(b)+len(p) > limit {
				return fmt.Errorf("larger than %d bytes", limit)
			}
			b = append(b, p...)
			return nil
		})
		if err == nil {
			return b, final, nil
		}
		if live {
			err = segmentRetryable(err)
		}
		if err := rt.Failed(ctx, err, false); err != nil {
			return nil, nil, err
		}
	}
}
