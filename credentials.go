package ferry

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/ferryhq/ferry/internal/auth"
)

// Credential is a user name and password.
type Credential struct{ User, Password string }

// Challenge is a server's demand for credentials (a 401) that the
// session's Credentials and .netrc do not answer: Config.Challenge is
// asked, as URLSession asks its delegate's didReceiveChallenge.
type Challenge struct {
	// Origin is the server's, "scheme://host[:port]".
	Origin string
	// Realm names the protection space; Scheme is "basic" or "digest".
	Realm, Scheme string
}

// Credentials is a store of credentials per protection space: an origin
// and a realm. A session answers a 401 with the one for its space, by
// Digest (SHA-256, then MD5) or Basic, whichever is the strongest the
// server offers, and sends it again with the origin's next requests. A
// credential is only ever sent to its own origin: a redirect elsewhere
// does not take it along. It is safe for concurrent use.
type Credentials struct {
	mu sync.Mutex
	m  map[[2]string]Credential
}

// NewCredentials returns an empty store.
func NewCredentials() *Credentials { return &Credentials{m: map[[2]string]Credential{}} }

// Set keeps c for the realm of origin (a URL: its scheme, host and port
// are what count); realm "" stands for every realm of origin that has no
// credential of its own.
func (s *Credentials) Set(origin, realm string, c Credential) error {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%w: credentials for %q: want an http(s) origin", ErrInvalidRequest, origin)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[[2]string{auth.Origin(u), realm}] = c
	return nil
}

func (s *Credentials) lookup(sp auth.Space) (Credential, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.m[[2]string{sp.Origin, sp.Realm}]; ok {
		return c, true
	}
	c, ok := s.m[[2]string{sp.Origin, ""}]
	return c, ok
}

// authLookup is how the session's transport finds the credential for a
// challenge, or nil when the configuration gives it none to answer with:
// then the transport is not wrapped at all.
func (s *Session) authLookup() (auth.Lookup, error) {
	cfg := s.cfg
	var netrc *auth.Netrc
	if cfg.Netrc || cfg.NetrcFile != "" {
		path, explicit := cfg.NetrcFile, cfg.NetrcFile != ""
		if !explicit {
			path = os.Getenv("NETRC")
			if path == "" {
				home, _ := os.UserHomeDir()
				path = filepath.Join(home, ".netrc")
			}
		}
		f, err := os.Open(path)
		switch {
		case err == nil:
			netrc, err = auth.ParseNetrc(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, path, err)
			}
		case explicit || !os.IsNotExist(err):
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	if cfg.Credentials == nil && netrc == nil && cfg.Challenge == nil {
		return nil, nil
	}
	return func(ctx context.Context, sp auth.Space) (auth.Credential, bool) {
		if cfg.Credentials != nil {
			if c, ok := cfg.Credentials.lookup(sp); ok {
				return auth.Credential(c), true
			}
		}
		// A .netrc names hosts, not origins: it answers the task's own
		// origin only, never a redirect's (another host, or the same
		// one over http).
		if netrc != nil && sp.Origin == auth.TaskOrigin(ctx) {
			if u, err := url.Parse(sp.Origin); err == nil {
				if c, ok := netrc.Lookup(u.Hostname()); ok {
					return c, true
				}
			}
		}
		if cfg.Challenge != nil {
			c, ok := cfg.Challenge(ctx, Challenge{Origin: sp.Origin, Realm: sp.Realm, Scheme: sp.Scheme})
			return auth.Credential(c), ok
		}
		return auth.Credential{}, false
	}, nil
}
