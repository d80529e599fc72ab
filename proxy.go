package ferry

import (
	"fmt"
	"net/http"
	"net/url"
	"os"

	"golang.org/x/net/http/httpproxy"

	"github.com/ferryhq/ferry/internal/auth"
)

// ProxyURL returns a Config.Proxy that sends every request through the
// proxy at raw: http://, https://, socks5:// or socks5h:// (which has the
// proxy resolve host names), with credentials in it if it needs them.
func ProxyURL(raw string) (func(*http.Request) (*url.URL, error), error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: proxy %q: want scheme://host:port", ErrInvalidConfig, raw)
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("%w: proxy %q: want http, https, socks5 or socks5h", ErrInvalidConfig, raw)
	}
	return http.ProxyURL(u), nil
}

// NoProxy is a Config.Proxy that sends every request direct, whatever the
// environment says.
func NoProxy(*http.Request) (*url.URL, error) { return nil, nil }

// proxyFromEnvironment is the environment's proxy as curl reads it:
// HTTPS_PROXY and HTTP_PROXY by the request's scheme, ALL_PROXY for a
// scheme without one, and NO_PROXY (lower-case names too). Requests to
// loopback addresses go direct.
func proxyFromEnvironment() func(*http.Request) (*url.URL, error) {
	cfg := httpproxy.FromEnvironment()
	all := os.Getenv("ALL_PROXY")
	if all == "" {
		all = os.Getenv("all_proxy")
	}
	if cfg.HTTPProxy == "" {
		cfg.HTTPProxy = all
	}
	if cfg.HTTPSProxy == "" {
		cfg.HTTPSProxy = all
	}
	f := cfg.ProxyFunc()
	return func(req *http.Request) (*url.URL, error) { return f(req.URL) }
}

// pickProxy is the session's proxy function: Config.Proxy or the
// environment's, with the Credentials for a proxy's origin when its URL
// carries none.
func (s *Session) pickProxy() func(*http.Request) (*url.URL, error) {
	pick := s.cfg.Proxy
	if pick == nil {
		pick = proxyFromEnvironment()
	}
	creds := s.cfg.Credentials
	return func(req *http.Request) (*url.URL, error) {
		u, err := pick(req)
		if err != nil || u == nil {
			return u, err
		}
		if u.User == nil && creds != nil {
			if c, ok := creds.lookup(auth.Space{Origin: auth.Origin(u)}); ok {
				withUser := *u
				withUser.User = url.UserPassword(c.User, c.Password)
				u = &withUser
			}
		}
		return u, nil
	}
}
