package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// attempt runs one request under the job's limits (see send.Env.Attempt).
func (r *run) attempt(ctx context.Context, f func(actx context.Context, wd *watchdog.Watchdog) error) error {
	return r.j.Attempt(ctx, r.j.URL, f)
}

// exchange sends one request and returns its response with the body read
// (at most 64 KiB: these are protocol answers, not data). body may be nil.
func (r *run) exchange(ctx context.Context, wd *watchdog.Watchdog, method, target string, hdr http.Header, body *section) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = r.j.Metered(ctx, wd, body.reader())
	}
	x, err := r.j.NewRequest(ctx, wd, method, target, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		x.Sent = func() int64 { return body.n }
		x.Req.ContentLength = body.n
		x.Req.GetBody = func() (io.ReadCloser, error) {
			return io.NopCloser(r.j.Metered(ctx, wd, body.reader())), nil
		}
		if body.n == 0 {
			x.Req.Body = http.NoBody
		}
	}
	for k, vs := range hdr {
		x.Req.Header[k] = vs
	}
	resp, err := x.Do()
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	x.Finish(int64(len(b)), rerr)
	r.proto.Store(&resp.Proto)
	if rerr != nil {
		return nil, nil, &transfer.Transient{Err: rerr}
	}
	return resp, b, nil
}

// resolve makes a Location header absolute against the request's URL,
// refusing one that ferry does not follow (transfer.CheckTarget).
func resolve(base *url.URL, loc string) (string, error) {
	u, err := url.Parse(loc)
	if err != nil || loc == "" {
		return "", errors.New("server answered without a usable Location")
	}
	abs := base.ResolveReference(u)
	if err := transfer.CheckTarget(abs, base); err != nil {
		return "", err
	}
	return abs.String(), nil
}

// section is bytes [off, off+n) of the file, read afresh for every attempt,
// so memory stays flat whatever the size.
type section struct {
	f   io.ReaderAt
	off int64
	n   int64
}

func (s *section) reader() io.Reader { return io.NewSectionReader(s.f, s.off, s.n) }

func keyOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
