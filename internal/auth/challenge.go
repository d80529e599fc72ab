// Package auth answers HTTP authentication challenges: a 401 with
// WWW-Authenticate (or a proxy's 407 with Proxy-Authenticate) is answered
// once more with credentials for its protection space, by Basic (RFC 7617)
// or Digest (RFC 7616, SHA-256 and MD5), the strongest the server offers.
// It sits in the transport, so every request of every engine is answered
// the same way, and what it learnt is sent with the next request to the
// same origin without a round trip.
package auth

import (
	"strings"
)

// A Challenge is one of the schemes a server offers, with its parameters
// (lower-case names).
type Challenge struct {
	Scheme string // lower case: "basic", "digest"
	Params map[string]string
}

// ParseChallenges reads the challenges of WWW-Authenticate (or
// Proxy-Authenticate) field values (RFC 9110 §11.6.1): several may stand
// in one value, separated by commas like their parameters. A value stops
// being read where it cannot be (a token68 of a scheme ferry does not
// speak, say).
func ParseChallenges(values []string) []Challenge {
	var out []Challenge
	for _, v := range values {
		p := &lexer{s: v}
		cur := -1 // the challenge parameters go to, in out
		for {
			p.skip(", \t")
			name := p.token()
			if name == "" {
				break // the end, or what cannot be read
			}
			p.skip(" \t")
			if cur >= 0 && p.eat('=') {
				p.skip(" \t")
				val, ok := p.value()
				if !ok {
					break
				}
				out[cur].Params[strings.ToLower(name)] = val
				continue
			}
			out = append(out, Challenge{Scheme: strings.ToLower(name), Params: map[string]string{}})
			cur = len(out) - 1
		}
	}
	return out
}

type lexer struct {
	s string
	i int
}

func (p *lexer) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *lexer) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// token reads an RFC 9110 token.
func (p *lexer) token() string {
	start := p.i
	for p.i < len(p.s) && tchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// value reads a token or a quoted string.
func (p *lexer) value() (string, bool) {
	if !p.eat('"') {
		t := p.token()
		return t, t != ""
	}
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), true
		case '\\':
			if p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

func tchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
