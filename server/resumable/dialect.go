package resumable

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/sfv"
	"github.com/ferryhq/ferry/server/store"
)

// TusVersion is the tus protocol version spoken.
const TusVersion = "1.0.0"

// Interop versions of draft-ietf-httpbis-resumable-upload: the value of
// Upload-Draft-Interop-Version each group of drafts uses.
const (
	interop3 = 3 // draft -01: Upload-Incomplete
	interop4 = 4 // draft -02: Upload-Complete replaces Upload-Incomplete
	interop5 = 5 // draft -03: 104 progress while content is processed
	interop6 = 6 // drafts -04, -05: application/partial-upload, Upload-Limit (expires), problem types
	interop7 = 7 // drafts -06 to -08: max-age replaces expires, inconsistent-length problem
	interop8 = 8 // drafts -09 to -12: Accept-Patch on OPTIONS, limits required on 104

	// LatestInterop is what a request speaks when it uses the draft's
	// fields without Upload-Draft-Interop-Version (the final RFC will
	// drop that header).
	LatestInterop = interop8
)

// InteropVersions lists the supported Upload-Draft-Interop-Version values.
var InteropVersions = []int{interop3, interop4, interop5, interop6, interop7, interop8}

// Media types of appended content.
const (
	tusChunkType     = "application/offset+octet-stream"
	partialUploadTyp = "application/partial-upload"
)

// dialect is the protocol a request speaks: tus 1.0.0 (version 0) or an
// interop version of the IETF draft.
type dialect struct {
	version int
}

func (d dialect) draft() bool { return d.version != 0 }

// detect works out a request's dialect. Upload-Draft-Interop-Version
// decides when present; then Tus-Resumable; then the draft's own fields
// (a client of the final RFC sends no interop version); otherwise tus.
func detect(r *http.Request) (dialect, *Error) {
	if v := field(r, "Upload-Draft-Interop-Version"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < interop3 || n > LatestInterop {
			return dialect{}, ErrInteropVersion.with("%q; supported: %s", v, interopList())
		}
		return dialect{n}, nil
	}
	if r.Header.Get("Tus-Resumable") != "" {
		return dialect{}, nil
	}
	if r.Header.Get("Upload-Complete") != "" ||
		r.Method == http.MethodPatch && mediaType(r.Header.Get("Content-Type")) == partialUploadTyp {
		return dialect{LatestInterop}, nil
	}
	return dialect{}, nil
}

func interopList() string {
	s := make([]string, len(InteropVersions))
	for i, v := range InteropVersions {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

// mediaType returns the lower-case type/subtype of a Content-Type value.
func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// requestComplete reads whether the client says this request completes
// the upload: Upload-Complete: ?1, or (interop 3) Upload-Incomplete: ?0.
// An absent field leaves the upload incomplete. A field that is not a
// Boolean is one the draft ignores, which leaves a creation or an append
// without the field it requires: ok is false, and the request is refused
// rather than read as incomplete.
func (d dialect) requestComplete(r *http.Request) (complete, ok bool) {
	name := "Upload-Complete"
	if d.version == interop3 {
		name = "Upload-Incomplete"
	}
	v := field(r, name)
	if v == "" {
		return false, true
	}
	b, err := sfv.ParseBoolean(v)
	if err != nil {
		return false, false
	}
	if d.version == interop3 {
		return !b, true
	}
	return b, true
}

// field returns the value of a structured field: all its field lines
// joined (RFC 9110 §5.3), so that a field sent twice is one value that a
// parser for an Item refuses rather than the first line alone.
func field(r *http.Request, name string) string {
	return strings.Join(r.Header.Values(name), ", ")
}

// setComplete states whether the upload is complete.
func (d dialect) setComplete(h http.Header, complete bool) {
	if d.version == interop3 {
		h.Set("Upload-Incomplete", sfv.FormatBoolean(!complete))
		return
	}
	h.Set("Upload-Complete", sfv.FormatBoolean(complete))
}

// limits returns the Upload-Limit value for an upload (or, for OPTIONS,
// for uploads in general when info is nil), or "" when nothing limits it.
// Upload-Limit exists from interop 6; its lifetime key is "expires" in 6
// and "max-age" from 7.
func (d dialect) limits(maxSize int64, expiry time.Duration, info *store.Info, now time.Time) string {
	if d.version < interop6 {
		return ""
	}
	var members []sfv.Member
	if maxSize > 0 {
		members = append(members, sfv.Member{Key: "max-size", Value: sfv.Item{Kind: sfv.Integer, Int: maxSize}})
	}
	if expiry > 0 && (info == nil || expires(*info)) {
		left := expiry
		if info != nil {
			left = info.UpdatedAt.Add(expiry).Sub(now)
		}
		key := "max-age"
		if d.version == interop6 {
			key = "expires"
		}
		members = append(members, sfv.Member{Key: key, Value: sfv.Item{Kind: sfv.Integer, Int: max(0, int64(left/time.Second))}})
	}
	s, _ := sfv.FormatDictionary(members)
	return s
}

// offset parses Upload-Offset: digits in tus, a non-negative
// structured-field Integer in the draft.
func (d dialect) offset(r *http.Request) (int64, bool) {
	v := field(r, "Upload-Offset")
	if !d.draft() {
		return parseDecimal(v)
	}
	n, err := sfv.ParseInteger(v)
	return n, err == nil && n >= 0
}

// uploadLength parses the draft's Upload-Length (tus uses parseDecimal).
// present is false when the field is absent or, being no Integer, ignored.
func (d dialect) uploadLength(r *http.Request) (n int64, present bool) {
	v := field(r, "Upload-Length")
	if v == "" {
		return 0, false
	}
	n, err := sfv.ParseInteger(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// parseDecimal parses a tus length or offset: 1*DIGIT.
func parseDecimal(v string) (int64, bool) {
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
