package ferry

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/atomicfile"

	"golang.org/x/net/publicsuffix"
)

// CookieJar is a session's cookie store (RFC 6265): cookies are kept per
// domain and path and sent only to the hosts they belong to, a redirect's
// target included; a cookie for a public suffix (co.uk, github.io) is
// refused. Matching is net/http/cookiejar's, with the public suffix list
// of golang.org/x/net/publicsuffix. It reads and writes the Netscape
// cookies.txt format that curl (-b, -c), wget and browsers' exporters use.
// It is safe for concurrent use.
type CookieJar struct {
	jar *cookiejar.Jar

	mu      sync.Mutex
	all     map[cookieKey]cookieEntry // what the jar holds, to export it
	changed bool

	saveMu sync.Mutex // one save at a time, so an older one never lands last
}

// cookieKey names a cookie as RFC 6265 §5.3 does: a new one with the same
// key replaces it.
type cookieKey struct{ domain, path, name string }

type cookieEntry struct {
	value            string
	hostOnly         bool
	secure, httpOnly bool
	expires          time.Time // zero: ends with the session
}

// NewCookieJar returns an empty jar.
func NewCookieJar() *CookieJar {
	jar, _ := cookiejar.New(&cookiejar.Options{PublicSuffixList: publicsuffix.List}) // never fails
	return &CookieJar{jar: jar, all: map[cookieKey]cookieEntry{}}
}

// Cookies returns the cookies to send to u (http.CookieJar).
func (j *CookieJar) Cookies(u *url.URL) []*http.Cookie { return j.jar.Cookies(u) }

// SetCookies keeps the cookies a response from u set, as far as u may set
// them (http.CookieJar).
func (j *CookieJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.jar.SetCookies(u, cookies)
	host := canonicalHost(u.Host)
	now := time.Now()
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cookies {
		k := cookieKey{domain: host, path: c.Path, name: c.Name}
		e := cookieEntry{value: c.Value, hostOnly: true, secure: c.Secure, httpOnly: c.HttpOnly}
		if c.Domain != "" {
			// A Domain that is the request's IP address makes a host-only
			// cookie, as in the jar.
			if d := strings.ToLower(strings.TrimPrefix(c.Domain, ".")); d != host || net.ParseIP(host) == nil {
				k.domain, e.hostOnly = d, false
			}
		}
		if k.path == "" || k.path[0] != '/' {
			k.path = defaultCookiePath(u.Path)
		}
		switch {
		case c.MaxAge < 0 || c.MaxAge == 0 && !c.Expires.IsZero() && !c.Expires.After(now):
			// A removal counts only where the jar removed the cookie: a
			// site may not remove another site's.
			if old, ok := j.all[k]; ok && !j.holds(k, old) {
				delete(j.all, k)
				j.changed = true
			}
			continue
		case c.MaxAge > 0:
			e.expires = now.Add(time.Duration(c.MaxAge) * time.Second)
		case !c.Expires.IsZero():
			e.expires = c.Expires
		}
		if !j.holds(k, e) {
			continue // the jar refused it: another domain, a public suffix
		}
		j.all[k] = e
		j.changed = true
	}
}

// holds reports whether the jar keeps the cookie k with e's value: it is
// sent to a URL it matches.
func (j *CookieJar) holds(k cookieKey, e cookieEntry) bool {
	u := &url.URL{Scheme: "https", Host: k.domain, Path: k.path}
	if strings.Contains(k.domain, ":") {
		u.Host = "[" + k.domain + "]"
	}
	for _, c := range j.jar.Cookies(u) {
		if c.Name == k.name && c.Value == e.value {
			return true
		}
	}
	return false
}

// canonicalHost is host as a cookie's domain: lower case, without a port
// or an IPv6 address's brackets.
func canonicalHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.Trim(host, "[]"))
}

// defaultCookiePath is RFC 6265 §5.1.4's default-path of a request path.
func defaultCookiePath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if p == "" || p[0] != '/' || i == 0 {
		return "/"
	}
	return p[:i]
}

// Import adds the cookies of a Netscape cookies.txt file (as curl -c and
// browsers' exporters write it), skipping expired ones. A line that is not
// a cookie is an error naming it.
func (j *CookieJar) Import(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	now := time.Now()
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		httpOnly := false
		if rest, ok := strings.CutPrefix(line, "#HttpOnly_"); ok {
			line, httpOnly = rest, true
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			return fmt.Errorf("ferry: cookies.txt line %d: want 7 tab-separated fields, have %d", n, len(f))
		}
		exp, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil || f[0] == "" || f[5] == "" {
			return fmt.Errorf("ferry: cookies.txt line %d: not a cookie", n)
		}
		domain := strings.TrimPrefix(f[0], ".")
		c := &http.Cookie{Name: f[5], Value: f[6], Path: f[2], Secure: strings.EqualFold(f[3], "TRUE"), HttpOnly: httpOnly}
		if exp > 0 {
			if c.Expires = time.Unix(exp, 0); !c.Expires.After(now) {
				continue
			}
		}
		if strings.EqualFold(f[1], "TRUE") || strings.HasPrefix(f[0], ".") {
			c.Domain = domain
		}
		host := domain
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		j.SetCookies(&url.URL{Scheme: "https", Host: host, Path: f[2]}, []*http.Cookie{c})
	}
	return sc.Err()
}

// Export writes the cookies the jar holds, unexpired, in the Netscape
// cookies.txt format: cookies that end with the session have 0 for their
// expiry, as curl writes them.
func (j *CookieJar) Export(w io.Writer) error {
	j.mu.Lock()
	now := time.Now()
	keys := make([]cookieKey, 0, len(j.all))
	for k, e := range j.all {
		if e.expires.IsZero() || e.expires.After(now) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b cookieKey) int {
		return strings.Compare(a.domain+"\t"+a.path+"\t"+a.name, b.domain+"\t"+b.path+"\t"+b.name)
	})
	var b strings.Builder
	b.WriteString("# Netscape HTTP Cookie File\n# Written by ferry.\n\n")
	for _, k := range keys {
		e := j.all[k]
		domain, sub := k.domain, "FALSE"
		if !e.hostOnly {
			domain, sub = "."+domain, "TRUE"
		}
		if e.httpOnly {
			domain = "#HttpOnly_" + domain
		}
		var exp int64
		if !e.expires.IsZero() {
			exp = e.expires.Unix()
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", domain, sub, k.path, strings.ToUpper(strconv.FormatBool(e.secure)), exp, k.name, e.value)
	}
	j.mu.Unlock()
	_, err := io.WriteString(w, b.String())
	return err
}

// LoadCookieJar returns a jar with the cookies of the cookies.txt file at
// path; a file that does not exist gives an empty jar.
func LoadCookieJar(path string) (*CookieJar, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewCookieJar(), nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCookieJar(f, path)
}

// readCookieJar is a jar of the cookies.txt read from r, named path in
// errors; it counts as unchanged.
func readCookieJar(r io.Reader, path string) (*CookieJar, error) {
	j := NewCookieJar()
	if err := j.Import(r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	j.changed = false
	return j, nil
}

// maxCookieFile bounds the cookies.txt a session reads of its own.
const maxCookieFile = 16 << 20

// loadOwnCookies reads the session's own cookies.txt: never through a
// link, and only a regular file of this user (one planted by another user
// could feed it cookies); none yet is an empty jar.
func loadOwnCookies(path string) (*CookieJar, error) {
	b, err := atomicfile.ReadFile(path, maxCookieFile)
	if errors.Is(err, fs.ErrNotExist) {
		return NewCookieJar(), nil
	}
	if err != nil {
		return nil, err
	}
	return readCookieJar(bytes.NewReader(b), path)
}

// Save writes the jar to path in the cookies.txt format, readable by its
// owner only, replacing the file in one step.
func (j *CookieJar) Save(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".cookies-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = j.Export(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return err
}

// saveIfChanged saves the jar to path when it changed since it was loaded
// or last saved.
func (j *CookieJar) saveIfChanged(path string) error {
	j.saveMu.Lock()
	defer j.saveMu.Unlock()
	j.mu.Lock()
	changed := j.changed
	j.changed = false
	j.mu.Unlock()
	if !changed {
		return nil
	}
	err := os.MkdirAll(filepath.Dir(path), 0o700)
	if err == nil {
		err = j.Save(path)
	}
	if err != nil {
		j.mu.Lock()
		j.changed = true // the next save tries again
		j.mu.Unlock()
	}
	return err
}
