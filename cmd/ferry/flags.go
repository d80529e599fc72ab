package main

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryhq/ferry"
)

// The -x usage of each kind of transfer, the same for the command and its
// bg form. The bound is ferry.MaxConnections.
const (
	getConnectionsUsage = "fetch over `N` connections in parallel, at most 64 (default: adapt, up to 8)"
	putConnectionsUsage = "send `N` segments in parallel, at most 64 (tus concatenation)"
	hlsConnectionsUsage = "fetch `N` segments at once, at most 64"
	// chunkSizeUsage is --chunk-size's; the bound is ferry.MinChunkSize.
	chunkSizeUsage = "fixed `SIZE` per append, at least 64k (default: measured, about 2 s each)"
)

// requestFlags are what a transfer's request carries, in the foreground
// and in the background alike: -x, -H and --limit-rate.
type requestFlags struct {
	connections        int
	limitRate          string
	headers            []string
	userAgent, referer string
}

func (f *requestFlags) register(fl *pflag.FlagSet, connectionsUsage string, connectionsDefault int) {
	fl.IntVarP(&f.connections, "connections", "x", connectionsDefault, connectionsUsage)
	fl.StringVar(&f.limitRate, "limit-rate", "", "cap the speed at `RATE` bytes/s, e.g. 500k, 2M")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "add a request header `'K: V'` (repeatable)")
	fl.StringVarP(&f.userAgent, "user-agent", "A", "", "send User-Agent: `NAME`")
	fl.StringVarP(&f.referer, "referer", "e", "", "send Referer: `URL`")
}

// check refuses what the request flags cannot mean.
func (f *requestFlags) check() error {
	if f.connections < 0 {
		return usagef("-x must not be negative")
	}
	return nil
}

// transferFlags are the flags every foreground transfer command shares:
// the request's, how to reach the server, how patiently, and how to
// report.
type transferFlags struct {
	requestFlags
	retries                     int
	write                       string
	jsonOut, quiet, verbose     bool
	insecure, h2c               bool
	cacert, cert, key           string
	tls12, tls13                bool
	connectTimeout, idleTimeout time.Duration
	cookie, cookieJar           string
	jar                         *ferry.CookieJar // this run's cookies
	user, netrcFile             string
	netrc                       bool
	maxRedirs                   int
	proxy                       setString
	proxyUser                   string
}

// setString is a string flag that knows whether it was given, so that an
// empty value can mean something of its own.
type setString struct {
	value string
	set   bool
}

func (s *setString) String() string { return s.value }
func (s *setString) Type() string   { return "string" }
func (s *setString) Set(v string) error {
	s.value, s.set = v, true
	return nil
}

// register adds the shared flags; what names the transfer ("download").
func (f *transferFlags) register(fl *pflag.FlagSet, what, connectionsUsage string, connectionsDefault int) {
	f.requestFlags.register(fl, connectionsUsage, connectionsDefault)
	fl.IntVar(&f.retries, "retry", 10, "retry up to `N` times in a row while no attempt moves the "+what+" forward (0: never)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the result and metrics as one JSON object on stdout")
	fl.StringVarP(&f.write, "write-out", "w", "", "print `FORMAT` on stdout at the end, with %{name} for the --json names")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress output")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "show each request's head and the answers' on stderr, credentials masked")
	durationVar(fl, &f.connectTimeout, "connect-timeout", 30*time.Second, "timeout for connecting, in seconds or as a duration")
	durationVar(fl, &f.idleTimeout, "idle-timeout", 60*time.Second, "give up an attempt when no byte moves for this long, in seconds or as a duration (0: never)")
	fl.BoolVarP(&f.insecure, "insecure", "k", false, "do not verify the server's TLS certificate")
	fl.StringVar(&f.cacert, "cacert", "", "verify the server's TLS certificate against the authorities in PEM `FILE` (instead of the system's)")
	fl.StringVarP(&f.cert, "cert", "E", "", "present the client certificate in PEM `FILE` (with its key, unless --key names another file)")
	fl.StringVar(&f.key, "key", "", "the private key of --cert, in PEM `FILE`")
	fl.BoolVar(&f.tls12, "tlsv1.2", false, "use TLS 1.2 or later")
	fl.BoolVar(&f.tls13, "tlsv1.3", false, "use TLS 1.3 or later")
	fl.BoolVar(&f.h2c, "http2-prior-knowledge", false, "speak HTTP/2 without TLS to http:// URLs")
	fl.IntVar(&f.maxRedirs, "max-redirs", 10, "follow at most `N` redirects (0: none)")
	fl.Var(&f.proxy, "proxy", "go through the proxy at `URL`: http://, https://, socks5:// or socks5h:// (default: $HTTPS_PROXY, $HTTP_PROXY, $ALL_PROXY; '' for none)")
	fl.StringVar(&f.proxyUser, "proxy-user", "", "log in to the proxy as `USER:PASSWORD`")
	fl.StringVarP(&f.cookie, "cookie", "b", "", "send the cookies `DATA|FILE`: 'name=value; n2=v2' (to the URL's origin only) or those of a cookies.txt file, as curl -b")
	fl.StringVarP(&f.user, "user", "u", "", "answer the server's 401 with `USER:PASSWORD` (Digest or Basic, the strongest it offers), to the URL's origin only")
	fl.BoolVar(&f.netrc, "netrc", false, "answer 401s with the login for the host in $NETRC or ~/.netrc")
	fl.StringVar(&f.netrcFile, "netrc-file", "", "answer 401s with the login for the host in `FILE` (netrc format)")
	fl.StringVar(&f.cookieJar, "cookie-jar", "", "at the end, write the cookies of this run to cookies.txt `FILE` ('-': stdout), as curl -c")
}

// cookies gives cfg this run's cookie store: in memory, starting with the
// cookies of a --cookie file. Cookies are kept between runs only in the
// files --cookie and --cookie-jar name, as curl keeps them.
func (f *transferFlags) cookies(cfg *ferry.Config) error {
	f.jar = ferry.NewCookieJar()
	switch {
	case strings.Contains(f.cookie, "="):
		// As the session's Header, the field goes to each task's
		// origin only.
		cfg.Header = http.Header{"Cookie": {f.cookie}}
	case f.cookie != "":
		jar, err := ferry.LoadCookieJar(f.cookie)
		if err != nil {
			return usagef("--cookie: %v", err)
		}
		f.jar = jar
	}
	cfg.Cookies = f.jar
	return nil
}

// session checks rawURL and makes the session and request header of a
// one-request command (put --data, put -F, get -I) from the flags.
func (f *transferFlags) session(rawURL string) (*ferry.Session, http.Header, error) {
	if err := checkURL(rawURL); err != nil {
		return nil, nil, err
	}
	cfg, err := f.config(rawURL)
	if err != nil {
		return nil, nil, err
	}
	header, err := f.header()
	if err != nil {
		return nil, nil, err
	}
	s, err := ferry.NewSession(cfg)
	return s, header, err
}

// credentials gives cfg the logins of -u, --netrc and --netrc-file.
func (f *transferFlags) credentials(cfg *ferry.Config, rawURL string) error {
	cfg.Netrc, cfg.NetrcFile = f.netrc, f.netrcFile
	if f.user == "" {
		return nil
	}
	user, pass, ok := strings.Cut(f.user, ":")
	if !ok || user == "" {
		return usagef("-u: want USER:PASSWORD")
	}
	cfg.Credentials = ferry.NewCredentials()
	if err := cfg.Credentials.Set(rawURL, "", ferry.Credential{User: user, Password: pass}); err != nil {
		return usagef("-u: %v", err)
	}
	return nil
}

// proxies gives cfg the proxy of --proxy, with the login of --proxy-user:
// none for --proxy ”, the environment's without --proxy.
func (f *transferFlags) proxies(cfg *ferry.Config) error {
	if !f.proxy.set {
		if f.proxyUser != "" {
			return usagef("--proxy-user goes with --proxy")
		}
		return nil
	}
	if f.proxy.value == "" {
		cfg.Proxy = ferry.NoProxy
		return nil
	}
	raw := f.proxy.value
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw // as curl takes host:port
	}
	u, err := url.Parse(raw)
	if err != nil {
		return usagef("--proxy %q: %v", f.proxy.value, err)
	}
	if f.proxyUser != "" {
		user, pass, ok := strings.Cut(f.proxyUser, ":")
		if !ok || user == "" {
			return usagef("--proxy-user: want USER:PASSWORD")
		}
		u.User = url.UserPassword(user, pass)
	}
	pick, err := ferry.ProxyURL(u.String())
	if err != nil {
		return usagef("--proxy: %v", err)
	}
	cfg.Proxy = pick
	return nil
}

// keepCookies writes the run's cookies where --cookie-jar says, whatever
// err the transfer ended with, and returns err, or the writing's failure.
func (f *transferFlags) keepCookies(io stdio, err error) error {
	if f.cookieJar == "" || f.jar == nil {
		return err
	}
	var werr error
	if f.cookieJar == "-" {
		werr = f.jar.Export(io.out)
	} else {
		werr = f.jar.Save(f.cookieJar)
	}
	if werr != nil {
		werr = fmt.Errorf("--cookie-jar: %w", werr)
	}
	return cmp.Or(err, werr)
}

// config builds the session's Config from the shared flags, for a
// transfer of rawURL.
func (f *transferFlags) config(rawURL string) (ferry.Config, error) {
	cfg := ferry.DefaultConfig()
	switch {
	case f.retries < 0:
		return cfg, usagef("--retry: want 0 or more retries, not %d", f.retries)
	case f.connectTimeout < 0:
		return cfg, usagef("--connect-timeout: want 0 or more, not %v", f.connectTimeout)
	case f.idleTimeout < 0:
		return cfg, usagef("--idle-timeout: want 0 (never) or more, not %v", f.idleTimeout)
	}
	cfg.ConnectTimeout = f.connectTimeout
	cfg.IdleTimeout = f.idleTimeout
	if f.idleTimeout == 0 {
		cfg.IdleTimeout = -1
	}
	// --retry counts retries, like curl's: N retries are N+1 attempts.
	cfg.Retry.MaxAttempts = f.retries + 1
	if f.retries == 0 {
		cfg.Retry.MaxAttempts = -1
	}
	var err error
	if cfg.RateLimit, err = parseRate(f.limitRate); err != nil {
		return cfg, err
	}
	if cfg.TLSConfig, err = f.tlsConfig(); err != nil {
		return cfg, err
	}
	cfg.HTTP2PriorKnowledge = f.h2c
	if err := checkWriteOut(f.write); err != nil {
		return cfg, err
	}
	if f.maxRedirs < 0 {
		return cfg, usagef("--max-redirs: want 0 or more, not %d", f.maxRedirs)
	}
	if max := f.maxRedirs; max != 10 { // 10 is the library's own
		cfg.CheckRedirect = func(_ *http.Request, via []*http.Request) error {
			if len(via) > max {
				return fmt.Errorf("%w: more than %d (--max-redirs)", ferry.ErrTooManyRedirects, max)
			}
			return nil
		}
	}
	if err := f.cookies(&cfg); err != nil {
		return cfg, err
	}
	if err := f.credentials(&cfg, rawURL); err != nil {
		return cfg, err
	}
	if err := f.proxies(&cfg); err != nil {
		return cfg, err
	}
	if err := f.check(); err != nil {
		return cfg, err
	}
	if f.connections > cfg.MaxConnsPerHost {
		cfg.MaxConnsPerHost = f.connections
	}
	return cfg, nil
}

// tlsConfig is what the TLS flags ask for; nil for nothing.
func (f *transferFlags) tlsConfig() (*tls.Config, error) {
	c := &tls.Config{InsecureSkipVerify: f.insecure}
	if f.cacert != "" && !f.insecure {
		pool, err := certPool(f.cacert)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if f.key != "" && f.cert == "" {
		return nil, usagef("--key goes with --cert")
	}
	if f.cert != "" {
		key := cmp.Or(f.key, f.cert)
		pair, err := tls.LoadX509KeyPair(f.cert, key)
		if err != nil {
			return nil, usagef("--cert: %v", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	switch {
	case f.tls13:
		c.MinVersion = tls.VersionTLS13
	case f.tls12:
		c.MinVersion = tls.VersionTLS12
	}
	if !c.InsecureSkipVerify && c.RootCAs == nil && c.Certificates == nil && c.MinVersion == 0 {
		return nil, nil
	}
	return c, nil
}

// certPool reads the certificate authorities of --cacert, as curl does:
// they replace the system's.
func certPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("--cacert: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, usagef("--cacert %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// header parses the -H flags.
func (f *requestFlags) header() (http.Header, error) {
	h := http.Header{}
	for _, kv := range f.headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("-H %q: want 'Name: value'", kv)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if f.userAgent != "" {
		h.Set("User-Agent", f.userAgent)
	}
	if f.referer != "" {
		h.Set("Referer", f.referer)
	}
	return h, nil
}

// requestError is a request the library refused, as a usage error that
// names the flag of a field out of bounds.
func requestError(err error) error {
	var le *ferry.LimitError
	if !errors.As(err, &le) {
		return usageError{err}
	}
	flag := map[string]string{"Connections": "-x", "ChunkSize": "--chunk-size"}[le.Field]
	if flag == "" {
		return usageError{err}
	}
	if le.Max == 0 {
		return usagef("%s %d: the least is %d", flag, le.Value, le.Min)
	}
	return usagef("%s %d: want %d to %d", flag, le.Value, le.Min, le.Max)
}

// reportTo says how the command reports on its task.
func (f *transferFlags) reportTo(url, path string, upload bool) output {
	return output{url: url, path: path, upload: upload, quiet: f.quiet, jsonOut: f.jsonOut, verbose: f.verbose, write: f.write}
}

// checkURL refuses anything but an absolute http(s) URL, as a usage error.
func checkURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("%q is not an http(s) URL", rawURL)
	}
	return nil
}

// parseRate reads --limit-rate: a positive size per second, 0 when unset.
func parseRate(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := parseSize(s)
	if err != nil || n <= 0 {
		return 0, usagef("--limit-rate: invalid rate %q", s)
	}
	return n, nil
}
