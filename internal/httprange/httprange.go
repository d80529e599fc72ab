// Package httprange parses and builds the RFC 9110 headers that resumable
// transfers depend on: Range, Content-Range, ETag and If-Range.
//
// Every parser here is strict: a header that does not match the grammar is an
// error, because a client that guesses at a lying server's meaning writes the
// wrong bytes into a file.
package httprange

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrSyntax reports a header that does not follow its RFC 9110 grammar.
var ErrSyntax = errors.New("httprange: malformed header")

// ContentRange is a parsed Content-Range header (RFC 9110 §14.4).
// For an unsatisfied-range ("bytes */N") First and Last are -1.
// Size is -1 when the server sent "*" for the complete length.
type ContentRange struct {
	First, Last int64
	Size        int64
}

// Len is the number of bytes the range covers (0 for an unsatisfied range).
func (c ContentRange) Len() int64 {
	if c.First < 0 {
		return 0
	}
	return c.Last - c.First + 1
}

// ParseContentRange parses "bytes FIRST-LAST/SIZE", "bytes FIRST-LAST/*" or
// "bytes */SIZE".
func ParseContentRange(s string) (ContentRange, error) {
	unit, rest, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return ContentRange{}, fmt.Errorf("%w: Content-Range %q", ErrSyntax, s)
	}
	rng, size, ok := strings.Cut(strings.TrimSpace(rest), "/")
	if !ok {
		return ContentRange{}, fmt.Errorf("%w: Content-Range %q", ErrSyntax, s)
	}
	cr := ContentRange{First: -1, Last: -1, Size: -1}
	if size != "*" {
		n, err := parseDigits(size)
		if err != nil {
			return ContentRange{}, fmt.Errorf("%w: Content-Range %q", ErrSyntax, s)
		}
		cr.Size = n
	}
	if rng == "*" {
		if cr.Size < 0 {
			return ContentRange{}, fmt.Errorf("%w: Content-Range %q", ErrSyntax, s)
		}
		return cr, nil
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return ContentRange{}, fmt.Errorf("%w: Content-Range %q", ErrSyntax, s)
	}
	f, err1 := parseDigits(first)
	l, err2 := parseDigits(last)
	if err1 != nil || err2 != nil || l < f || (cr.Size >= 0 && l >= cr.Size) {
		return ContentRange{}, fmt.Errorf("%w: Content-Range %q", ErrSyntax, s)
	}
	cr.First, cr.Last = f, l
	return cr, nil
}

// String formats c as a Content-Range value.
func (c ContentRange) String() string {
	size := "*"
	if c.Size >= 0 {
		size = strconv.FormatInt(c.Size, 10)
	}
	if c.First < 0 {
		return "bytes */" + size
	}
	return fmt.Sprintf("bytes %d-%d/%s", c.First, c.Last, size)
}

// Range formats a Range header asking for bytes [first, last]; last < 0 means
// "to the end".
func Range(first, last int64) string {
	if last < 0 {
		return fmt.Sprintf("bytes=%d-", first)
	}
	return fmt.Sprintf("bytes=%d-%d", first, last)
}

func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, ErrSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, ErrSyntax
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// ETag is an entity tag (RFC 9110 §8.8.3) kept in its wire form, quotes and
// weakness prefix included.
type ETag string

// ParseETag checks s against the entity-tag grammar and returns it.
func ParseETag(s string) (ETag, error) {
	s = strings.TrimSpace(s)
	opaque := strings.TrimPrefix(s, "W/")
	if len(opaque) < 2 || opaque[0] != '"' || opaque[len(opaque)-1] != '"' {
		return "", fmt.Errorf("%w: ETag %q", ErrSyntax, s)
	}
	for i := 1; i < len(opaque)-1; i++ {
		c := opaque[i]
		// etagc = %x21 / %x23-7E / obs-text
		if c < 0x21 || c == '"' || c == 0x7f {
			return "", fmt.Errorf("%w: ETag %q", ErrSyntax, s)
		}
	}
	return ETag(s), nil
}

// Weak reports whether e carries the W/ prefix.
func (e ETag) Weak() bool { return strings.HasPrefix(string(e), "W/") }

// StrongMatch is the strong comparison of RFC 9110 §8.8.3.2: both tags strong
// and their opaque parts equal. Only a strong match proves two byte ranges
// come from the same representation.
func (e ETag) StrongMatch(o ETag) bool {
	return e != "" && !e.Weak() && !o.Weak() && e == o
}

// Validator is what a client remembers about a representation so it can ask
// for the rest of it later: the strong ETag if there was one, else the
// Last-Modified date when it is strong enough to use.
type Validator struct {
	ETag         ETag   `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// LastModifiedStrong records RFC 9110 §8.8.2.2: a date is only usable in
	// If-Range when it was at least one second older than the response's Date.
	LastModifiedStrong bool `json:"last_modified_strong,omitempty"`
}

// FromResponse extracts the validator of a response. Malformed ETags are
// ignored (treated as absent) rather than trusted.
func FromResponse(h http.Header) Validator {
	var v Validator
	if et, err := ParseETag(h.Get("ETag")); err == nil {
		v.ETag = et
	}
	if lm := h.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			v.LastModified = lm
			if d, err := http.ParseTime(h.Get("Date")); err == nil && d.Sub(t) >= time.Second {
				v.LastModifiedStrong = true
			}
		}
	}
	return v
}

// IfRange returns the If-Range value to send with a resume request, or ""
// when none may be sent. RFC 9110 §13.1.5: never a weak entity tag, and a
// date only when there is no entity tag at all and the date is strong.
func (v Validator) IfRange() string {
	switch {
	case v.ETag != "":
		if v.ETag.Weak() {
			return ""
		}
		return string(v.ETag)
	case v.LastModified != "" && v.LastModifiedStrong:
		return v.LastModified
	}
	return ""
}

// Same reports whether w identifies the same representation as v. Two
// strong ETags decide alone. Otherwise the Last-Modified dates must match, and
// weak tags, when present, must agree too. When nothing can be compared the
// answer is false: nothing proves sameness.
func (v Validator) Same(w Validator) bool {
	if v.ETag != "" && w.ETag != "" && !v.ETag.Weak() && !w.ETag.Weak() {
		return v.ETag.StrongMatch(w.ETag)
	}
	if strings.TrimPrefix(string(v.ETag), "W/") != strings.TrimPrefix(string(w.ETag), "W/") {
		return false
	}
	if v.LastModified != "" && w.LastModified != "" {
		a, err1 := http.ParseTime(v.LastModified)
		b, err2 := http.ParseTime(w.LastModified)
		return err1 == nil && err2 == nil && a.Equal(b)
	}
	return false
}

// Empty reports whether v holds no validator at all.
func (v Validator) Empty() bool { return v.ETag == "" && v.LastModified == "" }
