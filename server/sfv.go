package server

import (
	"strconv"
	"strings"
)

// This file parses the Structured Field Dictionary (RFC 8941 §4.2.2) that
// Want-Repr-Digest carries, e.g. "sha-256=10, sha-512=3". The whole grammar
// is accepted (strings, tokens, byte sequences, inner lists, parameters), so
// a valid field never fails because of a member ferry does not care about;
// an invalid one fails as a whole, as §4.2 requires.

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
	p := &sfParser{s: strings.TrimLeft(field, " ")}
	type member struct {
		key   string
		value int64
		isInt bool
	}
	var members []member
	index := map[string]int{}
	for p.s != "" {
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		m := member{key: key}
		if p.consume('=') {
			if p.peek() == '(' {
				if !p.innerList() {
					return nil, false
				}
			} else {
				v, isInt, ok := p.bareItem()
				if !ok {
					return nil, false
				}
				m.value, m.isInt = v, isInt
			}
		}
		// A bare key is Boolean true; neither it nor an inner list is a
		// preference, but both must parse.
		if !p.params() {
			return nil, false
		}
		if i, dup := index[key]; dup {
			members[i] = m
		} else {
			index[key] = len(members)
			members = append(members, m)
		}
		p.ows()
		if p.s == "" {
			break
		}
		if !p.consume(',') {
			return nil, false
		}
		p.ows()
		if p.s == "" {
			return nil, false // trailing comma
		}
	}
	for _, m := range members {
		if m.isInt && m.value >= 0 && m.value <= 10 {
			prefs = append(prefs, digestPref{m.key, m.value})
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

type sfParser struct{ s string }

func (p *sfParser) peek() byte {
	if p.s == "" {
		return 0
	}
	return p.s[0]
}

func (p *sfParser) consume(c byte) bool {
	if p.s == "" || p.s[0] != c {
		return false
	}
	p.s = p.s[1:]
	return true
}

func (p *sfParser) sp() { p.s = strings.TrimLeft(p.s, " ") }

func (p *sfParser) ows() { p.s = strings.TrimLeft(p.s, " \t") }

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }

// key parses a key (RFC 8941 §4.2.3.3).
func (p *sfParser) key() (string, bool) {
	if p.s == "" || !(isLCAlpha(p.s[0]) || p.s[0] == '*') {
		return "", false
	}
	i := 1
	for i < len(p.s) {
		c := p.s[i]
		if !(isLCAlpha(c) || isDigit(c) || strings.IndexByte("_-.*", c) >= 0) {
			break
		}
		i++
	}
	k := p.s[:i]
	p.s = p.s[i:]
	return k, true
}

// params parses parameters (RFC 8941 §4.2.3.2), discarding them.
func (p *sfParser) params() bool {
	for p.consume(';') {
		p.sp()
		if _, ok := p.key(); !ok {
			return false
		}
		if p.consume('=') {
			if _, _, ok := p.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

// innerList parses an inner list with its parameters (RFC 8941 §4.2.1.2).
func (p *sfParser) innerList() bool {
	if !p.consume('(') {
		return false
	}
	for {
		p.sp()
		if p.consume(')') {
			return true // the caller parses the list's parameters
		}
		if _, _, ok := p.bareItem(); !ok {
			return false
		}
		if !p.params() {
			return false
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return false
		}
	}
}

// bareItem parses a bare item (RFC 8941 §4.2.3.1). It returns the value when
// the item is an Integer.
func (p *sfParser) bareItem() (v int64, isInt, ok bool) {
	switch c := p.peek(); {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return 0, false, p.str()
	case isAlpha(c) || c == '*':
		return 0, false, p.token()
	case c == ':':
		return 0, false, p.bytes()
	case c == '?':
		return 0, false, p.boolean()
	}
	return 0, false, false
}

// number parses an Integer or a Decimal (RFC 8941 §4.2.4).
func (p *sfParser) number() (v int64, isInt, ok bool) {
	neg := p.consume('-')
	if !isDigit(p.peek()) {
		return 0, false, false
	}
	digits, dot := 0, -1
	var b strings.Builder
	for p.s != "" {
		c := p.s[0]
		if isDigit(c) {
			digits++
		} else if c == '.' && dot < 0 {
			if digits > 12 {
				return 0, false, false
			}
			dot = digits
		} else {
			break
		}
		b.WriteByte(c)
		p.s = p.s[1:]
		if dot < 0 && digits > 15 || dot >= 0 && b.Len() > 16 {
			return 0, false, false
		}
	}
	if dot >= 0 {
		frac := digits - dot
		return 0, false, frac >= 1 && frac <= 3
	}
	v, err := strconv.ParseInt(b.String(), 10, 64)
	if err != nil {
		return 0, false, false
	}
	if neg {
		v = -v
	}
	return v, true, true
}

// str parses a String (RFC 8941 §4.2.5).
func (p *sfParser) str() bool {
	if !p.consume('"') {
		return false
	}
	for p.s != "" {
		c := p.s[0]
		p.s = p.s[1:]
		switch {
		case c == '\\':
			if p.s == "" || p.s[0] != '"' && p.s[0] != '\\' {
				return false
			}
			p.s = p.s[1:]
		case c == '"':
			return true
		case c < 0x20 || c > 0x7e:
			return false
		}
	}
	return false
}

// token parses a Token (RFC 8941 §4.2.6).
func (p *sfParser) token() bool {
	i := 1
	for i < len(p.s) && (isTchar(p.s[i]) || p.s[i] == ':' || p.s[i] == '/') {
		i++
	}
	p.s = p.s[i:]
	return true
}

func isTchar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// bytes parses a Byte Sequence (RFC 8941 §4.2.7); the content is not needed.
func (p *sfParser) bytes() bool {
	if !p.consume(':') {
		return false
	}
	end := strings.IndexByte(p.s, ':')
	if end < 0 {
		return false
	}
	for i := 0; i < end; i++ {
		c := p.s[i]
		if !(isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	p.s = p.s[end+1:]
	return true
}

// boolean parses a Boolean (RFC 8941 §4.2.8).
func (p *sfParser) boolean() bool {
	if !p.consume('?') {
		return false
	}
	return p.consume('0') || p.consume('1')
}
