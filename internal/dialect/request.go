package dialect

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/sfv"
)

// Interop versions of draft-ietf-httpbis-resumable-upload: the value of
// Upload-Draft-Interop-Version each group of drafts uses.
const (
	Interop3 = 3 // draft -01: Upload-Incomplete
	Interop4 = 4 // draft -02: Upload-Complete replaces Upload-Incomplete
	Interop5 = 5 // draft -03: 104 progress while content is processed
	Interop6 = 6 // drafts -04, -05: application/partial-upload, Upload-Limit (expires), problem types
	Interop7 = 7 // drafts -06 to -08: max-age replaces expires, inconsistent-length problem
	Interop8 = 8 // drafts -09 to -12: Accept-Patch on OPTIONS, limits required on 104

	// Latest is what a request speaks when it uses the draft's fields
	// without Upload-Draft-Interop-Version (the final RFC will drop that
	// header).
	Latest = Interop8
)

// Versions lists the interop versions ferry speaks.
var Versions = []int{Interop3, Interop4, Interop5, Interop6, Interop7, Interop8}

// Media types of appended content.
const (
	TusChunk      = "application/offset+octet-stream"
	PartialUpload = "application/partial-upload"
)

// Detect works out the dialect a request speaks, as a server reads it.
// Upload-Draft-Interop-Version decides when present (ok is false when it
// names no version ferry speaks); then Tus-Resumable; then the draft's own
// fields (a client of the final RFC sends no interop version); otherwise
// tus.
func Detect(r *http.Request) (d Dialect, ok bool) {
	if v := Field(r, "Upload-Draft-Interop-Version"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < Interop3 || n > Latest {
			return Dialect{}, false
		}
		return Dialect{n}, true
	}
	if r.Header.Get("Tus-Resumable") != "" {
		return Tus, true
	}
	if r.Header.Get("Upload-Complete") != "" ||
		r.Method == http.MethodPatch && MediaType(r.Header.Get("Content-Type")) == PartialUpload {
		return Dialect{Latest}, true
	}
	return Tus, true
}

// CompleteField names the field that says whether an upload is complete:
// Upload-Complete, or in interop 3 its inverse, Upload-Incomplete.
func (d Dialect) CompleteField() string {
	if d.Interop == Interop3 {
		return "Upload-Incomplete"
	}
	return "Upload-Complete"
}

// SetComplete states in h whether the upload is complete (in a request:
// whether the request completes it).
func (d Dialect) SetComplete(h http.Header, complete bool) {
	if d.Interop == Interop3 {
		complete = !complete
	}
	h.Set(d.CompleteField(), sfv.FormatBoolean(complete))
}

// HasComplete reports whether r carries the field that says whether it
// completes the upload.
func (d Dialect) HasComplete(r *http.Request) bool { return Field(r, d.CompleteField()) != "" }

// RequestComplete reads whether the client says this request completes
// the upload. An absent field leaves the upload incomplete. A field that
// is not a Boolean is one the draft ignores, which leaves a creation or an
// append without the field it requires: ok is false, and the request is
// refused rather than read as incomplete.
func (d Dialect) RequestComplete(r *http.Request) (complete, ok bool) {
	v := Field(r, d.CompleteField())
	if v == "" {
		return false, true
	}
	b, err := sfv.ParseBoolean(v)
	if err != nil {
		return false, false
	}
	return b != (d.Interop == Interop3), true
}

// RequestOffset parses a request's Upload-Offset: digits in tus, a
// non-negative structured-field Integer in the draft.
func (d Dialect) RequestOffset(r *http.Request) (int64, bool) {
	v := Field(r, "Upload-Offset")
	if !d.IETF() {
		return ParseDecimal(v)
	}
	n, err := sfv.ParseInteger(v)
	return n, err == nil && n >= 0
}

// RequestLength parses the draft's Upload-Length (tus uses ParseDecimal).
// present is false when the field is absent or, being no Integer, ignored.
func RequestLength(r *http.Request) (n int64, present bool) {
	v := Field(r, "Upload-Length")
	if v == "" {
		return 0, false
	}
	n, err := sfv.ParseInteger(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// Field returns the value of a structured field: all its field lines
// joined (RFC 9110 §5.3), so that a field sent twice is one value that a
// parser for an Item refuses rather than the first line alone.
func Field(r *http.Request, name string) string {
	return strings.Join(r.Header.Values(name), ", ")
}

// MediaType returns the lower-case type/subtype of a Content-Type value.
func MediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// ParseDecimal parses a tus length or offset: 1*DIGIT.
func ParseDecimal(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}
