package upload

import (
	"context"
	"net/http"
	"strconv"

	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// interopVersion is the IETF resumable-upload draft dialect ferry speaks:
// draft-ietf-httpbis-resumable-upload-05, interop version 6.
const interopVersion = "6"

func (r *run) ietfHeader() http.Header {
	return http.Header{"Upload-Draft-Interop-Version": {interopVersion}}
}

// ietfAppendHeader heads an append (draft §4.4): the offset it starts at,
// whether it is the last, and the media type of a partial upload.
func (r *run) ietfAppendHeader(off int64, last bool) http.Header {
	h := r.ietfHeader()
	h.Set("Upload-Offset", strconv.FormatInt(off, 10))
	h.Set("Content-Type", "application/partial-upload")
	if last {
		h.Set("Upload-Complete", "?1")
	} else {
		h.Set("Upload-Complete", "?0")
	}
	return h
}

// ietfCreate creates an upload with no content yet (draft §4.2): the
// server answers with its Location, to which the appends go.
func (r *run) ietfCreate(ctx context.Context) (string, error) {
	var loc string
	err := r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
		h := r.ietfHeader()
		h.Set("Upload-Complete", "?0")
		h.Set("Upload-Length", strconv.FormatInt(r.st.Size, 10))
		h.Set("Content-Disposition", `attachment; filename="`+safeFilename(r.j.Path)+`"`)
		if err := r.setReprDigest(h); err != nil {
			return err
		}
		resp, _, err := r.exchange(actx, wd, http.MethodPost, r.j.URL, h, &section{f: r.file, n: 0})
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
			return transfer.ResponseError(resp)
		}
		loc, err = resolve(resp.Request.URL, resp.Header.Get("Location"))
		return err
	})
	return loc, err
}
