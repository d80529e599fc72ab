package download

import (
	"context"
	"net/http"
	"strings"

	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

type probeResult struct {
	size      int64 // -1 unknown
	ranges    bool  // the server said it serves byte ranges
	validator httprange.Validator
	digest    reprDigest // the server's digest of the whole representation, if it sent one
}

// doProbe asks with HEAD and falls back to GET bytes=0-0 when HEAD is refused
// (some origins and presigned URLs only allow GET).
func (r *run) doProbe(ctx context.Context) (probeResult, error) {
	var p probeResult
	refused := false
	err := r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
		x, err := r.newRequest(actx, http.MethodHead, wd)
		if err != nil {
			return err
		}
		x.Req.Header.Set("Want-Repr-Digest", r.wantDigest())
		resp, err := x.Do()
		if err != nil {
			return err
		}
		resp.Body.Close()
		x.Finish(0, nil)
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			p = probeResult{
				size:      resp.ContentLength,
				ranges:    acceptsRanges(resp.Header),
				validator: httprange.FromResponse(resp.Header),
				digest:    parseReprDigest(resp.Header),
			}
			return nil
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
			return transfer.ResponseError(resp)
		}
		if se := transfer.ResponseError(resp); se.Retryable() {
			return se
		}
		refused = true
		return nil
	})
	if err != nil || !refused {
		return p, err
	}
	err = r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
		p, err = r.probeGET(actx, wd)
		return err
	})
	return p, err
}

func (r *run) probeGET(ctx context.Context, wd *watchdog.Watchdog) (probeResult, error) {
	x, err := r.newRequest(ctx, http.MethodGet, wd)
	if err != nil {
		return probeResult{}, err
	}
	x.Req.Header.Set("Range", httprange.Range(0, 0))
	x.Req.Header.Set("Want-Repr-Digest", r.wantDigest())
	resp, err := x.Do()
	if err != nil {
		return probeResult{}, err
	}
	// Never read a body here: a server that ignores Range would send it all.
	resp.Body.Close()
	x.Finish(0, nil)
	p := probeResult{size: -1, validator: httprange.FromResponse(resp.Header), digest: parseReprDigest(resp.Header)}
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
		return probeResult{}, transfer.ResponseError(resp)
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
