package resumable

import (
	"io"
	"net/http"
	"strconv"

	"github.com/ferryhq/ferry/server/internal/usercontent"
	"github.com/ferryhq/ferry/server/store"
)

// GetFile downloads a finished upload: 200 or 206 for a Range, with a
// strong ETag (a finished upload never changes), Last-Modified and the
// sanitised file name in Content-Disposition. Audio, video, images but SVG
// and plain text keep the client's media type and are shown inline; any
// other type is served as an application/octet-stream attachment, and
// every download carries nosniff and a sandbox policy. An upload not finished yet gets 409 with its
// Upload-Offset. Downloads take no lock, so they never disturb an upload.
func (h *Handler) GetFile(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.start(w, r); !ok {
		return
	}
	id := h.id(r)
	up, err := h.store.GetUpload(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	info, err := up.GetInfo(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if info.IsFinal && !info.Finished() {
		var e *Error
		h.withLock(r.Context(), id, 0, func(up store.Upload, i store.Info) {
			if i.IsFinal && !i.Finished() {
				i, e = h.tryConcat(r.Context(), up, i)
			}
			info = i
		})
		if e != nil {
			writeProblem(w, r, e)
			return
		}
	}
	if !info.Finished() {
		w.Header().Set("Upload-Offset", strconv.FormatInt(info.Offset, 10))
		writeProblem(w, r, ErrIncomplete.with("%d of %s bytes stored", info.Offset, sizeText(info)))
		return
	}
	rd, err := up.GetReader(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer rd.Close()

	hd := w.Header()
	hd.Del("Tus-Resumable")
	name := info.Name
	if name == "" {
		name = info.ID
	}
	// The client's bytes under the client's type: served so that they
	// never run as a page of this origin (see usercontent).
	usercontent.SetHeaders(hd, info.ContentType, name)
	hd.Set("ETag", `"`+info.ID+`"`)
	hd.Set("Cache-Control", "private, max-age=0")
	if rs, ok := rd.(io.ReadSeeker); ok {
		http.ServeContent(w, r, "", info.UpdatedAt, rs)
		return
	}
	hd.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	io.Copy(w, rd)
}

func sizeText(info store.Info) string {
	if info.SizeIsDeferred {
		return "an unknown number of"
	}
	return strconv.FormatInt(info.Size, 10)
}
