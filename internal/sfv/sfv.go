// Package sfv parses Structured Field Values (RFC 8941): the Dictionary and
// Item forms that RFC 9530 digests (Repr-Digest, Want-Repr-Digest,
// Content-Digest) and the resumable-upload headers (Upload-Complete: ?1)
// are written in. The whole grammar is accepted, so a valid field never
// fails because of a member ferry does not care about; an invalid field
// fails as a whole, as RFC 8941 §4.2 requires.
package sfv

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// ErrSyntax reports a field value that is not a valid structured field.
var ErrSyntax = errors.New("sfv: malformed structured field")

// Kind is the type of a bare item.
type Kind int

const (
	Integer Kind = iota + 1
	Decimal
	String
	Token
	ByteSequence
	Boolean
	InnerList
)

// Item is a parsed bare item (or an inner list, whose members are not kept).
// Parameters are parsed and discarded.
type Item struct {
	Kind  Kind
	Int   int64  // Integer
	Str   string // String, Token, and the text of a Decimal
	Bytes []byte // ByteSequence
	Bool  bool   // Boolean
}

// Member is one key and value of a Dictionary.
type Member struct {
	Key   string
	Value Item
}

// ParseDictionary parses a Dictionary (RFC 8941 §4.2.2). A repeated key
// keeps its first position and its last value. A key without a value is
// Boolean true.
func ParseDictionary(field string) ([]Member, error) {
	p := &parser{s: strings.TrimLeft(field, " ")}
	var members []Member
	index := map[string]int{}
	for p.s != "" {
		key, ok := p.key()
		if !ok {
			return nil, ErrSyntax
		}
		m := Member{Key: key, Value: Item{Kind: Boolean, Bool: true}}
		if p.consume('=') {
			if p.peek() == '(' {
				if !p.innerList() {
					return nil, ErrSyntax
				}
				m.Value = Item{Kind: InnerList}
			} else if m.Value, ok = p.bareItem(); !ok {
				return nil, ErrSyntax
			}
		}
		if !p.params() {
			return nil, ErrSyntax
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
			return nil, ErrSyntax
		}
		p.ows()
		if p.s == "" {
			return nil, ErrSyntax // trailing comma
		}
	}
	return members, nil
}

// ParseItem parses an Item (RFC 8941 §4.2.3), e.g. "?1" or "42".
func ParseItem(field string) (Item, error) {
	p := &parser{s: strings.Trim(field, " ")}
	it, ok := p.bareItem()
	if !ok || !p.params() || p.s != "" {
		return Item{}, ErrSyntax
	}
	return it, nil
}

type parser struct{ s string }

func (p *parser) peek() byte {
	if p.s == "" {
		return 0
	}
	return p.s[0]
}

func (p *parser) consume(c byte) bool {
	if p.s == "" || p.s[0] != c {
		return false
	}
	p.s = p.s[1:]
	return true
}

func (p *parser) sp() { p.s = strings.TrimLeft(p.s, " ") }

func (p *parser) ows() { p.s = strings.TrimLeft(p.s, " \t") }

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }

// key parses a key (RFC 8941 §4.2.3.3).
func (p *parser) key() (string, bool) {
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
func (p *parser) params() bool {
	for p.consume(';') {
		p.sp()
		if _, ok := p.key(); !ok {
			return false
		}
		if p.consume('=') {
			if _, ok := p.bareItem(); !ok {
				return false
			}
		}
	}
	return true
}

// innerList parses an inner list (RFC 8941 §4.2.1.2); its parameters are
// left for the caller.
func (p *parser) innerList() bool {
	if !p.consume('(') {
		return false
	}
	for {
		p.sp()
		if p.consume(')') {
			return true
		}
		if _, ok := p.bareItem(); !ok {
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

// bareItem parses a bare item (RFC 8941 §4.2.3.1).
func (p *parser) bareItem() (Item, bool) {
	switch c := p.peek(); {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case isAlpha(c) || c == '*':
		return p.token()
	case c == ':':
		return p.bytes()
	case c == '?':
		return p.boolean()
	}
	return Item{}, false
}

// number parses an Integer or a Decimal (RFC 8941 §4.2.4).
func (p *parser) number() (Item, bool) {
	neg := p.consume('-')
	if !isDigit(p.peek()) {
		return Item{}, false
	}
	digits, dot := 0, -1
	var b strings.Builder
	for p.s != "" {
		c := p.s[0]
		if isDigit(c) {
			digits++
		} else if c == '.' && dot < 0 {
			if digits > 12 {
				return Item{}, false
			}
			dot = digits
		} else {
			break
		}
		b.WriteByte(c)
		p.s = p.s[1:]
		if dot < 0 && digits > 15 || dot >= 0 && b.Len() > 16 {
			return Item{}, false
		}
	}
	if dot >= 0 {
		frac := digits - dot
		text := b.String()
		if neg {
			text = "-" + text
		}
		return Item{Kind: Decimal, Str: text}, frac >= 1 && frac <= 3
	}
	v, err := strconv.ParseInt(b.String(), 10, 64)
	if err != nil {
		return Item{}, false
	}
	if neg {
		v = -v
	}
	return Item{Kind: Integer, Int: v}, true
}

// str parses a String (RFC 8941 §4.2.5).
func (p *parser) str() (Item, bool) {
	if !p.consume('"') {
		return Item{}, false
	}
	var b strings.Builder
	for p.s != "" {
		c := p.s[0]
		p.s = p.s[1:]
		switch {
		case c == '\\':
			if p.s == "" || p.s[0] != '"' && p.s[0] != '\\' {
				return Item{}, false
			}
			b.WriteByte(p.s[0])
			p.s = p.s[1:]
		case c == '"':
			return Item{Kind: String, Str: b.String()}, true
		case c < 0x20 || c > 0x7e:
			return Item{}, false
		default:
			b.WriteByte(c)
		}
	}
	return Item{}, false
}

// token parses a Token (RFC 8941 §4.2.6).
func (p *parser) token() (Item, bool) {
	i := 1
	for i < len(p.s) && (isTchar(p.s[i]) || p.s[i] == ':' || p.s[i] == '/') {
		i++
	}
	t := p.s[:i]
	p.s = p.s[i:]
	return Item{Kind: Token, Str: t}, true
}

func isTchar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// bytes parses a Byte Sequence (RFC 8941 §4.2.7).
func (p *parser) bytes() (Item, bool) {
	if !p.consume(':') {
		return Item{}, false
	}
	end := strings.IndexByte(p.s, ':')
	if end < 0 {
		return Item{}, false
	}
	for i := 0; i < end; i++ {
		c := p.s[i]
		if !(isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=') {
			return Item{}, false
		}
	}
	// §4.2.7: parsers SHOULD accept missing padding.
	b, err := base64.StdEncoding.DecodeString(p.s[:end])
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(p.s[:end], "=")); err != nil {
			return Item{}, false
		}
	}
	p.s = p.s[end+1:]
	return Item{Kind: ByteSequence, Bytes: b}, true
}

// boolean parses a Boolean (RFC 8941 §4.2.8).
func (p *parser) boolean() (Item, bool) {
	if !p.consume('?') {
		return Item{}, false
	}
	switch {
	case p.consume('0'):
		return Item{Kind: Boolean}, true
	case p.consume('1'):
		return Item{Kind: Boolean, Bool: true}, true
	}
	return Item{}, false
}
