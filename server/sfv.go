package server

import (
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/sfv"
)

// Want-Repr-Digest is a Structured Field Dictionary (RFC 8941 §4.2.2), e.g.
// "sha-256=10, sha-512=3"; internal/sfv parses the whole grammar.

// digestPref is one member of Want-Repr-Digest whose value is an Integer.
type digestPref struct {
	alg    string
	weight int64
}

// parseWantDigest parses a Want-Repr-Digest field value. It returns the
// members whose values are Integers in the range 0-10 (RFC 9530 §4), in
// field order; a repeated key keeps its first position and its last value
// (RFC 8941 §4.2.2). ok is false when the value is not a Dictionary.
func parseWantDigest(field string) (prefs []digestPref, ok bool) {
	members, err := sfv.ParseDictionary(field)
	if err != nil {
		return nil, false
	}
	for _, m := range members {
		if v := m.Value; v.Kind == sfv.Integer && v.Int >= 0 && v.Int <= 10 {
			prefs = append(prefs, digestPref{m.Key, v.Int})
		}
	}
	return prefs, true
}

// formatWantDigest serializes prefs as a Want-Repr-Digest field value.
func formatWantDigest(prefs []digestPref) string {
	var b strings.Builder
	for i, p := range prefs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.alg)
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(p.weight, 10))
	}
	return b.String()
}
