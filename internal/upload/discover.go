package upload

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// caps is what the server said it offers.
type caps struct {
	extensions map[string]bool // tus extensions
	maxSize    int64           // 0: no limit stated
	checksums  map[string]bool // tus checksum algorithms
}

// discover decides the protocol: forced by the job, remembered from an
// earlier run, or asked of the server with OPTIONS (tus answers with
// Tus-Version; an IETF draft server with Upload-Limit or its media type in
// Accept-Patch); anything else gets multipart/form-data.
func (r *run) discover(ctx context.Context) (stateFunc, error) {
	r.op = "discover"
	proto := r.j.Protocol
	if proto == "" {
		proto = Auto
	}
	if proto == Auto || proto == Tus {
		var hdr http.Header
		err := r.retrying(ctx, func(ctx context.Context) (bool, error) {
			return false, r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
				resp, _, err := r.exchange(actx, wd, http.MethodOptions, r.j.URL, http.Header{"Tus-Resumable": {"1.0.0"}}, nil)
				if err != nil {
					return err
				}
				if se := transfer.ResponseError(resp); se.Retryable() {
					return se
				}
				hdr = resp.Header
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
		r.caps = parseCaps(hdr)
		if proto == Auto {
			switch {
			case hdr.Get("Tus-Version") != "":
				proto = Tus
			case hdr.Get("Upload-Limit") != "" || strings.Contains(hdr.Get("Accept-Patch"), "application/partial-upload"):
				proto = IETF
			default:
				proto = Multipart
			}
		}
	}
	if r.st.Protocol != "" && r.st.Protocol != proto {
		r.st = State{Version: stateVersion, URL: r.st.URL, Path: r.st.Path, Size: r.st.Size, ModTime: r.st.ModTime}
	}
	r.st.Protocol = proto
	r.res.Protocol = proto
	if r.caps.maxSize > 0 && r.st.Size > r.caps.maxSize {
		return nil, &TooLargeError{Size: r.st.Size, Max: r.caps.maxSize}
	}
	switch proto {
	case Tus:
		if r.parallel() {
			return r.sendParallel, nil
		}
		return r.sendSingle, nil
	case IETF:
		return r.sendSingle, nil
	}
	return r.sendMultipart, nil
}

func parseCaps(h http.Header) caps {
	c := caps{extensions: map[string]bool{}, checksums: map[string]bool{}}
	for _, e := range strings.Split(h.Get("Tus-Extension"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			c.extensions[e] = true
		}
	}
	for _, a := range strings.Split(h.Get("Tus-Checksum-Algorithm"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.checksums[a] = true
		}
	}
	c.maxSize, _ = strconv.ParseInt(h.Get("Tus-Max-Size"), 10, 64)
	return c
}

// parallel reports whether to upload segments concurrently: asked for,
// offered by the server, and the file big enough to split.
func (r *run) parallel() bool {
	if len(r.st.Segments) > 0 || r.st.Final != "" {
		return true // an earlier run's layout: continue it
	}
	return r.j.Connections > 1 && r.caps.extensions["concatenation"] && r.st.Size >= 2*probeSize && r.st.Location == ""
}

// TooLargeError reports a file larger than the server accepts.
type TooLargeError struct{ Size, Max int64 }

func (e *TooLargeError) Error() string {
	return "ferry: the file (" + strconv.FormatInt(e.Size, 10) + " bytes) exceeds the server's limit of " + strconv.FormatInt(e.Max, 10)
}
