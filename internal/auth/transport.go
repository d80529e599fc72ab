package auth

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Space is a protection space (RFC 9110 §11.5): where a challenge came
// from and what it calls the credentials it wants.
type Space struct {
	// Origin is the server's, "scheme://host[:port]", in lower case and
	// without a default port.
	Origin string
	Realm  string
	Scheme string // "basic" or "digest"
}

// Lookup returns the credential for s; false when there is none, and the
// challenge is then the answer.
type Lookup func(ctx context.Context, s Space) (Credential, bool)

type taskOriginKey struct{}

// WithTaskOrigin says, in a request's context, the origin of the URL its
// task was asked for: a Lookup may answer only that origin's challenges
// with what the user gave for a host (a .netrc), not a redirect's.
func WithTaskOrigin(ctx context.Context, taskURL string) context.Context {
	u, err := url.Parse(taskURL)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, taskOriginKey{}, Origin(u))
}

// TaskOrigin is what WithTaskOrigin put in ctx; "" for none.
func TaskOrigin(ctx context.Context) string {
	o, _ := ctx.Value(taskOriginKey{}).(string)
	return o
}

// Transport answers the 401s of Base once with the credential Lookup
// gives, and sends what answered an origin's challenge with that origin's
// next requests. A request that sets Authorization itself is left alone,
// as is one whose body cannot be sent again (no GetBody).
type Transport struct {
	Base   http.RoundTripper
	Lookup Lookup

	mu    sync.Mutex
	known map[string]*answer // by origin
}

// answer is what answered a challenge: a Basic credential, or a Digest
// challenge with its credential.
type answer struct {
	basic  string
	digest *digest
}

func (a *answer) value(req *http.Request) string {
	if a.digest != nil {
		return a.digest.authorization(req.Method, req.URL.RequestURI())
	}
	return a.basic
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" || t.Lookup == nil {
		return t.Base.RoundTrip(req)
	}
	origin := Origin(req.URL)
	first := req
	if a := t.knownFor(origin); a != nil {
		first = withAuthorization(req, a.value(req))
	}
	resp, err := t.Base.RoundTrip(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	a := t.answerFor(req.Context(), origin, resp.Header.Values("WWW-Authenticate"))
	if a == nil {
		t.forget(origin)
		return resp, nil
	}
	again := withAuthorization(req, a.value(req))
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil
		}
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		again.Body = body
	}
	// The challenge's body is short; reading it lets the connection serve
	// the next request.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp, err = t.Base.RoundTrip(again)
	if err == nil && resp.StatusCode != http.StatusUnauthorized {
		t.remember(origin, a)
	} else {
		t.forget(origin)
	}
	return resp, err
}

// answerFor answers the strongest of the challenges it has a credential
// for: Digest with SHA-256, then with MD5, then Basic.
func (t *Transport) answerFor(ctx context.Context, origin string, values []string) *answer {
	chs := ParseChallenges(values)
	rank := func(c Challenge) int {
		switch c.Scheme {
		case "digest":
			alg := strings.ToUpper(c.Params["algorithm"])
			if alg == "" {
				alg = "MD5"
			}
			if i := slices.Index(digestAlgorithms, alg); i >= 0 {
				return i
			}
		case "basic":
			return len(digestAlgorithms)
		}
		return -1
	}
	chs = slices.DeleteFunc(chs, func(c Challenge) bool { return rank(c) < 0 })
	slices.SortStableFunc(chs, func(a, b Challenge) int { return rank(a) - rank(b) })
	for _, c := range chs {
		cred, ok := t.Lookup(ctx, Space{Origin: origin, Realm: c.Params["realm"], Scheme: c.Scheme})
		if !ok {
			continue
		}
		if c.Scheme == "basic" {
			return &answer{basic: basic(cred)}
		}
		if d, ok := newDigest(c, cred); ok {
			return &answer{digest: d}
		}
	}
	return nil
}

func (t *Transport) knownFor(origin string) *answer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.known[origin]
}

func (t *Transport) remember(origin string, a *answer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.known == nil {
		t.known = map[string]*answer{}
	}
	t.known[origin] = a
}

func (t *Transport) forget(origin string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.known, origin)
}

// withAuthorization is req with Authorization set, for one round trip.
func withAuthorization(req *http.Request, v string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", v)
	return r
}

// Origin is u's origin as a protection space names it: scheme and host in
// lower case, the port only when it is not the scheme's default.
func Origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(scheme == "http" && p == "80" || scheme == "https" && p == "443") {
		host = net.JoinHostPort(strings.Trim(host, "[]"), p)
	}
	return scheme + "://" + host
}

// CloseIdleConnections closes Base's idle connections, so that a client
// with this transport can.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.Base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
