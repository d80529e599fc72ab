package auth

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Netrc holds the logins of a .netrc file, as curl, ftp and git read it:
// "machine HOST login USER password PASS", and a "default" for other
// hosts. Other keywords (account) are read and ignored; a macdef is
// skipped to its blank line.
type Netrc struct {
	machines map[string]Credential
	def      *Credential
}

// ParseNetrc reads a .netrc file.
func ParseNetrc(r io.Reader) (*Netrc, error) {
	n := &Netrc{machines: map[string]Credential{}}
	toks, err := netrcTokens(r)
	if err != nil {
		return nil, err
	}
	var cur *Credential
	var host string
	flush := func() {
		if cur == nil {
			return
		}
		if host == "" {
			c := *cur
			n.def = &c
		} else if _, dup := n.machines[host]; !dup {
			n.machines[host] = *cur // the first entry for a host wins, as in curl
		}
		cur = nil
	}
	for i := 0; i < len(toks); i++ {
		arg := func() (string, error) {
			if i+1 >= len(toks) {
				return "", fmt.Errorf("netrc: %q at the end wants a value", toks[i])
			}
			i++
			return toks[i], nil
		}
		switch toks[i] {
		case "machine":
			flush()
			h, err := arg()
			if err != nil {
				return nil, err
			}
			host, cur = strings.ToLower(h), &Credential{}
		case "default":
			flush()
			host, cur = "", &Credential{}
		case "login", "password", "account":
			v, err := arg()
			if err != nil {
				return nil, err
			}
			if cur == nil {
				return nil, fmt.Errorf("netrc: %q before any machine", toks[i-1])
			}
			switch toks[i-1] {
			case "login":
				cur.User = v
			case "password":
				cur.Password = v
			}
		case macdefMark:
			// netrcTokens dropped the macro's body.
		default:
			return nil, fmt.Errorf("netrc: unknown keyword %q", toks[i])
		}
	}
	flush()
	return n, nil
}

// macdefMark stands for a macdef and its body in the tokens.
const macdefMark = "\x00macdef"

// netrcTokens splits a .netrc file into words; a word may be quoted with
// double quotes, and a macdef's body (to a blank line) is one macdefMark.
func netrcTokens(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var toks []string
	inMacro := false
	for sc.Scan() {
		line := sc.Text()
		if inMacro {
			if strings.TrimSpace(line) == "" {
				inMacro = false
			}
			continue
		}
		for line = strings.TrimLeft(line, " \t"); line != ""; line = strings.TrimLeft(line, " \t") {
			if line[0] == '#' {
				break
			}
			var w string
			if line[0] == '"' {
				end := strings.IndexByte(line[1:], '"')
				if end < 0 {
					return nil, fmt.Errorf("netrc: unterminated quote")
				}
				w, line = line[1:1+end], line[2+end:]
			} else {
				end := strings.IndexAny(line, " \t")
				if end < 0 {
					end = len(line)
				}
				w, line = line[:end], line[end:]
			}
			if w == "macdef" {
				toks = append(toks, macdefMark)
				inMacro = true
				break
			}
			toks = append(toks, w)
		}
	}
	return toks, sc.Err()
}

// Lookup returns the login for host (without a port): its machine's, or
// the default.
func (n *Netrc) Lookup(host string) (Credential, bool) {
	if c, ok := n.machines[strings.ToLower(host)]; ok {
		return c, true
	}
	if n.def != nil {
		return *n.def, true
	}
	return Credential{}, false
}
