package upload

import (
	"context"
	"net/http"

	"github.com/ferryhq/ferry/internal/dialect"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// ietfCreate creates an upload with no content yet (draft §4.2): the
// server answers with its Location, to which the appends go.
func (r *run) ietfCreate(ctx context.Context) (string, error) {
	var loc string
	err := r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
		h := dialect.IETF6.Create(r.st.Size, false)
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
