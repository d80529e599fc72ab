// Package dialect is ferry's one resumable-upload protocol layer: the
// header fields of tus 1.0 and of the IETF resumable-upload draft's
// interop versions, for both sides. A client (the file upload engine and
// live streams alike) heads a creation, an append and an offset request
// with a Dialect and reads the server's offset answers; a server
// (server/resumable, server/stream) detects a request's Dialect and reads
// and answers its fields. What to send and when stays with the engine.
package dialect

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/sfv"
)

// Dialect is a resumable-upload protocol: tus 1.0.0 (Interop 0) or an
// interop version of draft-ietf-httpbis-resumable-upload.
type Dialect struct{ Interop int }

var (
	// Tus is tus 1.0.0.
	Tus = Dialect{}
	// IETF6 is drafts -04 and -05 (interop version 6), which tusd
	// speaks: ferry's file uploads use it.
	IETF6 = Dialect{6}
	// IETF8 is drafts -09 to -12 (interop version 8): 104 interim
	// responses carry the upload's URL, which a live stream needs.
	IETF8 = Dialect{8}
)

// IETF reports whether d is a version of the IETF draft.
func (d Dialect) IETF() bool { return d.Interop != 0 }

// Header is what every request of the dialect carries: the protocol's
// version.
func (d Dialect) Header() http.Header {
	if d.IETF() {
		return http.Header{"Upload-Draft-Interop-Version": {strconv.Itoa(d.Interop)}}
	}
	return http.Header{"Tus-Resumable": {"1.0.0"}}
}

// Create heads the creation of an upload of length bytes (-1: not known
// yet, as a live stream's). For the draft, complete says whether the
// creation request's content is the whole upload.
func (d Dialect) Create(length int64, complete bool) http.Header {
	h := d.Header()
	if d.IETF() {
		d.SetComplete(h, complete)
		if length >= 0 {
			h.Set("Upload-Length", strconv.FormatInt(length, 10))
		}
		return h
	}
	if length >= 0 {
		h.Set("Upload-Length", strconv.FormatInt(length, 10))
	} else {
		h.Set("Upload-Defer-Length", "1")
	}
	return h
}

// Append heads an append at off (draft §4.4, tus PATCH); for the draft,
// last says whether the upload ends with it.
func (d Dialect) Append(off int64, last bool) http.Header {
	h := d.Header()
	h.Set("Upload-Offset", strconv.FormatInt(off, 10))
	if d.IETF() {
		h.Set("Content-Type", PartialUpload)
		d.SetComplete(h, last)
	} else {
		h.Set("Content-Type", TusChunk)
	}
	return h
}

// Offset reads the offset a server states (Upload-Offset in an answer's
// header or trailer) and, for the draft, whether it holds the whole
// upload. An offset is decimal digits with no sign or spaces (tus 1.0
// §Upload-Offset; the draft's sf-integer of a length has the same form).
func (d Dialect) Offset(h http.Header) (off int64, complete bool, err error) {
	v := h.Get("Upload-Offset")
	if v == "" || len(v) > 19 || strings.Trim(v, "0123456789") != "" {
		return 0, false, fmt.Errorf("invalid Upload-Offset %q", v)
	}
	if off, err = strconv.ParseInt(v, 10, 64); err != nil {
		return 0, false, fmt.Errorf("invalid Upload-Offset %q", v)
	}
	if d.IETF() {
		b, err := sfv.ParseBoolean(h.Get(d.CompleteField()))
		complete = err == nil && b != (d.Interop == Interop3)
	}
	return off, complete, nil
}
