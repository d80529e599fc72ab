package ferry

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
)

// RetryPolicy says how often and how patiently a failed transfer is retried:
// exponential backoff with jitter, Retry-After honoured, and only requests
// that are safe to repeat. The zero value is usable.
type RetryPolicy struct {
	// MaxAttempts bounds consecutive failed attempts that made no progress.
	// An attempt that moved bytes resets the count, so a flaky but working
	// link is never given up on. 0 means 10; negative means no retries.
	MaxAttempts int
	// Initial is the first backoff (0 means 500ms); it doubles per failure,
	// with half of it random so that many clients do not retry at once.
	Initial time.Duration
	// Max caps a single backoff (0 means 30s). A server's Retry-After may ask
	// for longer, up to MaxRetryAfter.
	Max time.Duration
	// MaxRetryAfter caps how long a Retry-After is honoured (0 means 10m).
	// A server asking for longer fails the transfer instead of stalling it.
	MaxRetryAfter time.Duration
}

// Config configures a Session. The zero value is usable: every zero field
// means the default documented on it. A Config is copied by NewSession;
// changing it afterwards has no effect.
type Config struct {
	// IdleTimeout ends an attempt during which no byte moved for this long
	// (URLSession's timeoutIntervalForRequest). Every byte resets it, so a
	// slow but moving transfer is never cut; a live stream waiting for its
	// producer is not idle. 0 means 60s; negative disables.
	IdleTimeout time.Duration
	// ResourceTimeout bounds a whole task, retries and suspensions included
	// (URLSession's timeoutIntervalForResource). 0 means 7 days; negative disables.
	ResourceTimeout time.Duration
	// ConnectTimeout bounds dialling and the TLS handshake. 0 means 30s.
	ConnectTimeout time.Duration
	// MaxConnsPerHost caps connections to one host, across all tasks. 0 means 8.
	MaxConnsPerHost int
	// MinSpeed, when positive, ends an attempt that averages fewer bytes per
	// second over MinSpeedTime (0 means 30s), like curl's --speed-limit.
	// Live streams ignore it: their pace is their producer's.
	MinSpeed     int64
	MinSpeedTime time.Duration
	// RateLimit caps the bytes per second of all tasks of the session
	// together. 0 means unlimited.
	RateLimit int64
	// Header is added to every request of a task to the origin (scheme,
	// host and port) of the task's URL. Credentials among its fields
	// (Authorization, Cookie, and fields named for a token, key, secret,
	// password or session) are not sent to any other origin: a redirect's
	// target, an upload's or stream's Location, a playlist's variants,
	// segments and keys on other hosts, nor over http from an https URL.
	// The other fields go everywhere.
	Header http.Header
	// Retry is the retry policy.
	Retry RetryPolicy
	// CheckRedirect decides whether to follow a redirect, like
	// http.Client.CheckRedirect. nil follows up to 10.
	CheckRedirect func(req *http.Request, via []*http.Request) error
	// TLSConfig is used for https connections (nil: the system roots).
	TLSConfig *tls.Config
	// HTTP2PriorKnowledge speaks HTTP/2 without TLS (h2c) to http:// URLs.
	HTTP2PriorKnowledge bool
	// Transport, if set, replaces the transport ferry builds; the timeouts,
	// connection cap, TLS and HTTP/2 settings above then do not apply to it.
	Transport http.RoundTripper
	// Ephemeral keeps task state in memory only: no control files are
	// written, and a download resumes across processes only through
	// ResumeData. The default (false) keeps a control file beside each
	// .part file so the same download run again continues.
	Ephemeral bool
	// ResumableStreams makes every live stream resumable (see
	// StreamRequest.Resumable).
	ResumableStreams bool
	// StateDir holds the state of uploads and the cookies between runs.
	// "" means $XDG_STATE_HOME/ferry, or ~/.local/state/ferry.
	StateDir string
	// Cookies is the session's cookie store, which other sessions (or
	// anything else) may share. nil means the session's own: kept in
	// StateDir/cookies.txt between runs (read by NewSession, written as
	// tasks end), or in memory only when Ephemeral.
	Cookies *CookieJar
	// NoCookies keeps no cookies and sends none but those in Header.
	NoCookies bool
	// Proxy picks the proxy of each request, as http.Transport.Proxy
	// does: ProxyURL for one proxy (http, https, socks5, socks5h), NoProxy
	// for none. nil means the environment's, as curl reads it:
	// HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY; requests to
	// loopback addresses go direct. A proxy whose URL has no credentials
	// gets those of Credentials for its origin.
	Proxy func(*http.Request) (*url.URL, error)
	// Credentials answers servers' 401s, per origin and realm (see
	// Credentials). Netrc (or NetrcFile, which must exist) also looks up
	// the server's host in $NETRC or ~/.netrc, as curl --netrc does, for
	// the origin of the task's URL only, never a redirect's. For a
	// challenge neither answers, Challenge is asked; false (or nil) gives
	// the 401 to the task. A credential in the URL (user:pass@) is sent
	// as is, and these are not asked.
	Credentials *Credentials
	Netrc       bool
	NetrcFile   string
	Challenge   func(ctx context.Context, c Challenge) (Credential, bool)
	// Background, when set, makes this a background session with that
	// identifier: its downloads, uploads and HLS downloads run in the
	// ferry daemon (started when none runs) and go on after this program
	// exits. A program that opens a session with the same identifier
	// later gets the tasks back (Tasks) and every event it missed
	// (BackgroundEvents). One process at a time may hold an identifier
	// (ErrSessionInUse); sessions with different identifiers run side by
	// side. The daemon's own configuration decides connection caps,
	// bandwidth, timeouts and retries; of the settings above only Header
	// applies (it goes with each task), and the daemon keeps no cookies.
	Background string
	// Daemon locates the daemon of a background session.
	Daemon DaemonConfig
}

// DefaultConfig returns the configuration with every default spelled out.
func DefaultConfig() Config {
	return Config{
		IdleTimeout:     60 * time.Second,
		ResourceTimeout: 7 * 24 * time.Hour,
		ConnectTimeout:  30 * time.Second,
		MaxConnsPerHost: 8,
	}
}

// EphemeralConfig is DefaultConfig without persistent state.
func EphemeralConfig() Config {
	c := DefaultConfig()
	c.Ephemeral = true
	return c
}

// resolved returns c with zero fields replaced by their defaults.
func (c Config) resolved() Config {
	d := DefaultConfig()
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ResourceTimeout == 0 {
		c.ResourceTimeout = d.ResourceTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.MaxConnsPerHost <= 0 {
		c.MaxConnsPerHost = d.MaxConnsPerHost
	}
	if c.MinSpeed > 0 && c.MinSpeedTime <= 0 {
		c.MinSpeedTime = 30 * time.Second
	}
	if c.StateDir == "" {
		c.StateDir = bgapi.DefaultStateDir()
	}
	return c
}
