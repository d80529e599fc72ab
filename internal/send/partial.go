package send

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/transfer"
)

// Want is the part of a representation a ranged request asked for.
type Want struct {
	First int64
	Last  int64 // -1: to the end
	// Size is the representation's length when known, -1 otherwise.
	Size int64
	// Validator is the representation's, if one is known; a 206 that
	// names another is from another version.
	Validator httprange.Validator
}

// ErrOtherVersion reports a 206 that names another validator than the one
// asked for: a server that ignored If-Range but says what it sent.
var ErrOtherVersion = errors.New("the range came from another version")

// Partial decides whether a 206 answer may be used for w: its
// Content-Range is exactly the bytes asked for, of a representation of
// the known size, its Content-Length (if any) agrees, and it is of the
// identity coding, since ranges are of the encoded form (RFC 9110 §14.2).
// It returns transfer.ErrBadContentRange for bytes that must never be
// spliced in, and ErrOtherVersion for bytes of another version.
func Partial(resp *http.Response, w Want) (httprange.ContentRange, error) {
	if resp.StatusCode != http.StatusPartialContent {
		return httprange.ContentRange{}, transfer.ErrBadContentRange
	}
	cr, err := httprange.ParseContentRange(resp.Header.Get("Content-Range"))
	switch {
	case err != nil, cr.First != w.First, w.Last >= 0 && cr.Last != w.Last,
		w.Size >= 0 && cr.Size >= 0 && cr.Size != w.Size,
		resp.ContentLength >= 0 && resp.ContentLength != cr.Len(),
		!identity(resp.Header.Get("Content-Encoding")):
		return cr, transfer.ErrBadContentRange
	}
	if got := httprange.FromResponse(resp.Header); !got.Empty() && !w.Validator.Empty() && !got.Same(w.Validator) {
		return cr, ErrOtherVersion
	}
	return cr, nil
}

func identity(enc string) bool {
	return enc == "" || strings.EqualFold(enc, "identity")
}
