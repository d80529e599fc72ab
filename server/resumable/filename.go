package resumable

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultFileName is the name of an upload whose client gave none, or one
// that sanitises to nothing.
const DefaultFileName = "upload"

// maxFileName bounds a name in bytes, the limit of common file systems.
const maxFileName = 255

// SanitizeFileName makes a client-supplied file name safe to use as one
// path element and in a Content-Disposition header: only what follows the
// last slash or backslash is kept, control and bidirectional-override
// characters are removed, invalid UTF-8 becomes "_", leading dots and
// surrounding spaces are trimmed, and the result is at most 255 bytes. A
// name with nothing left, such as "..", becomes [DefaultFileName].
//
//	SanitizeFileName("../../etc/passwd") = "passwd"
//	SanitizeFileName(`C:\Users\a\report.pdf`) = "report.pdf"
func SanitizeFileName(name string) string {
	name = strings.ToValidUTF8(name, "_")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	for {
		trimmed := strings.TrimLeft(strings.TrimSpace(name), ".")
		if trimmed == name {
			break
		}
		name = trimmed
	}
	if len(name) > maxFileName {
		cut := maxFileName
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = strings.TrimSpace(name[:cut])
	}
	if name == "" {
		return DefaultFileName
	}
	return name
}

// isBidiControl reports the characters that reorder displayed text, which
// can make "evil\u202Etxt.exe" look like "evilexe.txt".
func isBidiControl(r rune) bool {
	return r == '\u200e' || r == '\u200f' || r == '\u061c' ||
		'\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069'
}
