package transfer

import (
	"net/http"
	"net/url"
	"strings"
)

// Credentials belong to one origin: the URL a task was asked for. Every
// engine adds the task's header with AddHeader and every redirect passes
// CheckRedirect, so that none of them sends the credentials anywhere else:
// not to a redirect's target, an upload's or a stream's Location, or a
// playlist's variants, segments and keys on other hosts, and never over
// http from an https origin (a change of scheme is a change of origin).

// SameOrigin reports whether a and b have one origin (RFC 6454 §4): the
// same scheme, host and port, a scheme's default port standing for none.
func SameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// IsCredential reports whether a header field carries credentials:
// Authorization, Proxy-Authorization, Cookie, and any field one of whose
// words (split at '-' and '_') names a token, key, secret, password,
// session, signature or authentication (X-Auth-Token, X-Api-Key,
// Private-Token, X-Amz-Security-Token, ...).
func IsCredential(name string) bool {
	for w := range strings.FieldsFuncSeq(strings.ToLower(name), func(r rune) bool { return r == '-' || r == '_' }) {
		switch {
		case strings.HasPrefix(w, "auth"), strings.HasPrefix(w, "cookie"), strings.HasPrefix(w, "credential"):
			return true
		}
		switch w {
		case "token", "key", "apikey", "secret", "password", "passwd", "session", "signature":
			return true
		}
	}
	return false
}

// AddHeader adds h, the task's own header fields, to req. They were given
// for the origin of the task's URL (taskURL): to any other origin the
// credentials among them are not sent.
func AddHeader(req *http.Request, h http.Header, taskURL string) {
	foreign := true
	if u, err := url.Parse(taskURL); err == nil {
		foreign = !SameOrigin(u, req.URL)
	}
	for k, vs := range h {
		if foreign && IsCredential(k) {
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
}

// dropCredentials removes the credentials from a redirect's request when
// the chain has left its first request's origin: net/http keeps them for
// another port, another scheme and subdomains. Once gone they stay gone,
// even should the chain come back.
func dropCredentials(req *http.Request, via []*http.Request) {
	first := via[0].URL
	for _, r := range append(via[1:len(via):len(via)], req) {
		if !SameOrigin(first, r.URL) {
			for k := range req.Header {
				if IsCredential(k) {
					delete(req.Header, k)
				}
			}
			return
		}
	}
}
