package sfv

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Serializing (RFC 8941 §4.1), for the items and dictionaries servers send:
// Upload-Complete: ?1, Upload-Offset: 42, Upload-Limit: max-size=1000.

// MaxInteger is the largest magnitude an Integer may have (§3.3.1).
const MaxInteger = 999_999_999_999_999

// ErrRange reports an Integer outside ±MaxInteger.
var ErrRange = errors.New("sfv: integer out of range")

// FormatBoolean serializes a Boolean item: "?1" or "?0".
func FormatBoolean(b bool) string {
	if b {
		return "?1"
	}
	return "?0"
}

// FormatInteger serializes an Integer item. n must be within ±MaxInteger.
func FormatInteger(n int64) (string, error) {
	if n > MaxInteger || n < -MaxInteger {
		return "", ErrRange
	}
	return strconv.FormatInt(n, 10), nil
}

// ParseBoolean parses a field holding a Boolean item (parameters ignored).
func ParseBoolean(field string) (bool, error) {
	it, err := ParseItem(field)
	if err != nil || it.Kind != Boolean {
		return false, ErrSyntax
	}
	return it.Bool, nil
}

// ParseInteger parses a field holding an Integer item (parameters ignored).
func ParseInteger(field string) (int64, error) {
	it, err := ParseItem(field)
	if err != nil || it.Kind != Integer {
		return 0, ErrSyntax
	}
	return it.Int, nil
}

// FormatDictionary serializes members as a Dictionary (§4.1.2). A Boolean
// true value is written as the bare key. It fails with ErrSyntax for a key
// that is not a valid key, or a value it cannot serialize (an Inner List,
// a String with characters outside printable ASCII, a malformed Token).
func FormatDictionary(members []Member) (string, error) {
	var b strings.Builder
	for i, m := range members {
		if !validKey(m.Key) {
			return "", ErrSyntax
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.Key)
		if m.Value.Kind == Boolean && m.Value.Bool {
			continue
		}
		b.WriteByte('=')
		if err := writeBareItem(&b, m.Value); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

func validKey(k string) bool {
	if k == "" || !(isLCAlpha(k[0]) || k[0] == '*') {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !(isLCAlpha(c) || isDigit(c) || strings.IndexByte("_-.*", c) >= 0) {
			return false
		}
	}
	return true
}

func writeBareItem(b *strings.Builder, it Item) error {
	switch it.Kind {
	case Integer:
		s, err := FormatInteger(it.Int)
		if err != nil {
			return err
		}
		b.WriteString(s)
	case Boolean:
		b.WriteString(FormatBoolean(it.Bool))
	case String:
		b.WriteByte('"')
		for i := 0; i < len(it.Str); i++ {
			c := it.Str[i]
			if c < 0x20 || c > 0x7e {
				return ErrSyntax
			}
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	case Token:
		if it.Str == "" || !(isAlpha(it.Str[0]) || it.Str[0] == '*') {
			return ErrSyntax
		}
		for i := 1; i < len(it.Str); i++ {
			if c := it.Str[i]; !isTchar(c) && c != ':' && c != '/' {
				return ErrSyntax
			}
		}
		b.WriteString(it.Str)
	case ByteSequence:
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(it.Bytes))
		b.WriteByte(':')
	case Decimal:
		if _, err := ParseItem(it.Str); err != nil {
			return ErrSyntax
		}
		b.WriteString(it.Str)
	default:
		return ErrSyntax
	}
	return nil
}
