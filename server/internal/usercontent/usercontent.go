// Package usercontent decides how the server presents bytes a client
// uploaded (finished uploads, stored streams) to whoever downloads them, so
// that nobody can make the origin serve a page that runs in its name.
//
// Only media a browser never executes is shown inline, under its own type:
// audio/*, video/*, image/* other than SVG (an SVG image is a document that
// runs scripts), and text/plain. Anything else is served as
// application/octet-stream with Content-Disposition: attachment. Every
// answer carries X-Content-Type-Options: nosniff, so a browser does not
// guess a more active type from the bytes, and Content-Security-Policy:
// sandbox, so even a document that is rendered runs no script and has no
// origin.
package usercontent

import (
	"fmt"
	"mime"
	"net/http"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Opaque is the media type of bytes served without a type of their own.
const Opaque = "application/octet-stream"

// SetHeaders sets the Content-Type, Content-Disposition,
// X-Content-Type-Options and Content-Security-Policy of a response serving
// a client's upload: mediaType is the type the client declared (or
// MediaType found), name the file name to offer, "" for none.
func SetHeaders(h http.Header, mediaType, name string) {
	ct, inline := Presentation(mediaType)
	kind := "attachment"
	if inline {
		kind = "inline"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", Disposition(kind, name))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
}

// Presentation returns the media type to serve content declared as
// mediaType with, and whether it may be shown inline. Parameters are
// dropped but a text/plain charset; what is not on the allowlist, or does
// not parse, is Opaque and not inline.
func Presentation(mediaType string) (contentType string, inline bool) {
	mt, params, err := mime.ParseMediaType(mediaType)
	if err != nil {
		return Opaque, false
	}
	top, sub, _ := strings.Cut(mt, "/")
	switch {
	case top == "audio" || top == "video":
		return mt, true
	case top == "image" && !strings.Contains(sub, "svg") && !strings.Contains(sub, "xml"):
		return mt, true
	case mt == "text/plain":
		cs := strings.ToLower(params["charset"])
		if cs == "" || strings.ContainsFunc(cs, func(r rune) bool { return !isAttrChar(r) }) {
			cs = "utf-8"
		}
		return "text/plain; charset=" + cs, true
	}
	return Opaque, false
}

// MediaType guesses the type of content a client sent without one: from
// name's extension, or else from its first bytes (head, up to 512 bytes),
// as http.DetectContentType does. Presentation judges the result.
func MediaType(name string, head []byte) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return http.DetectContentType(head)
}

// Disposition formats a Content-Disposition field value (RFC 6266) of kind
// ("inline" or "attachment") offering name. The filename parameter is a
// token of RFC 8187 attr-chars or else a quoted string of printable ASCII; a name with other characters
// adds filename* (RFC 8187, UTF-8) and keeps filename as an ASCII fallback
// with "_" in their place. Control and formatting characters (bidirectional
// overrides among them) are dropped, and quotes and backslashes become "_",
// so nothing of the name can end the field or the parameter.
func Disposition(kind, name string) string {
	name = clean(name)
	if name == "" {
		return kind
	}
	ascii := true
	fallback := strings.Map(func(r rune) rune {
		if r >= utf8.RuneSelf {
			ascii = false
			return '_'
		}
		return r
	}, name)
	var b strings.Builder
	b.WriteString(kind)
	b.WriteString("; filename=")
	if !strings.ContainsFunc(fallback, func(r rune) bool { return !isAttrChar(r) }) {
		b.WriteString(fallback)
	} else {
		b.WriteString(`"` + fallback + `"`)
	}
	if !ascii {
		b.WriteString("; filename*=UTF-8''")
		for _, c := range []byte(name) {
			if c < utf8.RuneSelf && isAttrChar(rune(c)) {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
	}
	return b.String()
}

// clean drops what must never reach a header from a file name: invalid
// UTF-8, control and formatting characters; quotes and backslashes become
// "_". Surrounding spaces go too.
func clean(name string) string {
	name = strings.ToValidUTF8(name, "_")
	name = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError:
			return -1
		case r == '"' || r == '\\':
			return '_'
		}
		return r
	}, name)
	return strings.TrimSpace(name)
}

// isAttrChar reports RFC 8187's attr-char: what filename* keeps unencoded,
// and all a bare filename token is made of.
func isAttrChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		strings.ContainsRune("!#$&+-.^_`|~", r)
}
