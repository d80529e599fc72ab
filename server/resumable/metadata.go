package resumable

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxMetadataBytes bounds the Upload-Metadata of one upload, as sent: the
// handler keeps it for the upload's lifetime, so a client may not make it
// arbitrarily large.
const MaxMetadataBytes = 16 << 10

// ErrMetadataSyntax is wrapped by the errors of [ParseMetadata].
var ErrMetadataSyntax = errors.New("resumable: malformed Upload-Metadata")

// ParseMetadata parses a tus Upload-Metadata value (tus 1.0.0, creation
// extension): comma-separated pairs of a key and a Base64-encoded value,
// separated by a space; the value, and the space before it, may be left
// out. Keys are non-empty, unique, and hold no spaces, commas or control
// characters. Values are decoded; padding may be omitted. An empty field
// yields an empty map.
func ParseMetadata(field string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(field) == "" {
		return m, nil
	}
	for pair := range strings.SplitSeq(field, ",") {
		pair = strings.Trim(pair, " \t")
		key, value, _ := strings.Cut(pair, " ")
		if key == "" {
			return nil, fmt.Errorf("%w: empty key in %q", ErrMetadataSyntax, pair)
		}
		for i := 0; i < len(key); i++ {
			if c := key[i]; c <= ' ' || c == 0x7f || c == ',' {
				return nil, fmt.Errorf("%w: bad character %q in key %q", ErrMetadataSyntax, c, key)
			}
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("%w: key %q repeated", ErrMetadataSyntax, key)
		}
		value = strings.Trim(value, " \t")
		if strings.ContainsAny(value, " \t") {
			return nil, fmt.Errorf("%w: space in the value of %q", ErrMetadataSyntax, key)
		}
		dec, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			if dec, err = base64.RawStdEncoding.DecodeString(value); err != nil {
				return nil, fmt.Errorf("%w: value of %q is not Base64", ErrMetadataSyntax, key)
			}
		}
		m[key] = string(dec)
	}
	return m, nil
}

// FormatMetadata encodes m as an Upload-Metadata value, keys sorted so the
// result is stable. Empty values are sent as the bare key.
func FormatMetadata(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		if v := m[k]; v != "" {
			b.WriteByte(' ')
			b.WriteString(base64.StdEncoding.EncodeToString([]byte(v)))
		}
	}
	return b.String()
}
