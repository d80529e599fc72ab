package ferry_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// loginSite sets a session cookie at /login and serves /private only with
// it; /away redirects to away, and every request's Cookie header is kept.
type loginSite struct {
	away string
	mu   sync.Mutex
	sent []string // the Cookie header of each request, by path
}

func (l *loginSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.sent = append(l.sent, r.URL.Path+" "+r.Header.Get("Cookie"))
	l.mu.Unlock()
	switch r.URL.Path {
	case "/login":
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "s3cr3t", Path: "/", HttpOnly: true, MaxAge: 3600})
		fmt.Fprint(w, "welcome")
	case "/away":
		http.Redirect(w, r, l.away, http.StatusFound)
	default:
		if c, err := r.Cookie("sid"); err != nil || c.Value != "s3cr3t" {
			http.Error(w, "log in first", http.StatusForbidden)
			return
		}
		fmt.Fprint(w, "the private file")
	}
}

func (l *loginSite) cookies() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.sent...)
}

func TestCookiesLoginThenDownload(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		site := &loginSite{}
		url := newServer(t, h2, ferrytest.Handler(func(http.Handler) http.Handler { return site })).URL
		cfg := testConfig(h2)
		cfg.Ephemeral = true
		s := mustSession(t, cfg)
		if res, err := runData(t, s, ferry.DataRequest{URL: url + "/login"}); err != nil || res.StatusCode != 200 {
			t.Fatalf("login: %v %v", res, err)
		}
		path := filepath.Join(t.TempDir(), "private")
		if _, _, err := download(t, s, ferry.DownloadRequest{URL: url + "/private", Path: path}); err != nil {
			t.Fatalf("download after login: %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "the private file" {
			t.Errorf("downloaded %q", b)
		}
	})
}

// A cookie goes only to the host it belongs to: not to another host a
// redirect leads to.
func TestCookiesStayWithTheirHost(t *testing.T) {
	other := &loginSite{}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	// The same loopback, by another name: a cookie's host ignores ports.
	awayURL := strings.Replace(otherSrv.URL, "127.0.0.1", "localhost", 1) + "/private"
	site := &loginSite{away: awayURL}
	url := newServer(t, false, ferrytest.Handler(func(http.Handler) http.Handler { return site })).URL
	cfg := testConfig(false)
	cfg.Ephemeral = true
	s := mustSession(t, cfg)
	if _, err := runData(t, s, ferry.DataRequest{URL: url + "/login"}); err != nil {
		t.Fatal(err)
	}
	res, err := runData(t, s, ferry.DataRequest{URL: url + "/away"})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("the other host answered %d, want 403: it got no cookie", res.StatusCode)
	}
	for _, c := range other.cookies() {
		if strings.Contains(c, "s3cr3t") {
			t.Errorf("the other host got the cookie: %q", c)
		}
	}
}

// The default configuration keeps its cookies in the state directory,
// for the next session; an ephemeral one keeps them in memory only.
func TestCookiesPersist(t *testing.T) {
	site := &loginSite{}
	url := newServer(t, false, ferrytest.Handler(func(http.Handler) http.Handler { return site })).URL
	state := t.TempDir()
	cfg := testConfig(false)
	cfg.StateDir = state
	s, err := ferry.NewSession(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runData(t, s, ferry.DataRequest{URL: url + "/login"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(state, "cookies.txt"))
	if err != nil {
		t.Fatalf("no cookies.txt once the task ended: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("cookies.txt has mode %v, want 0600", fi.Mode().Perm())
	}
	s.Close()

	s = mustSession(t, cfg)
	if res, err := runData(t, s, ferry.DataRequest{URL: url + "/private"}); err != nil || res.StatusCode != 200 {
		t.Errorf("a new session with the same state: %v %v, want the cookie sent", res.StatusCode, err)
	}

	eph := testConfig(false)
	eph.Ephemeral, eph.StateDir = true, t.TempDir()
	s = mustSession(t, eph)
	if _, err := runData(t, s, ferry.DataRequest{URL: url + "/login"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(eph.StateDir, "cookies.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an ephemeral session wrote its cookies: %v", err)
	}

	none := testConfig(false)
	none.Ephemeral, none.NoCookies = true, true
	s = mustSession(t, none)
	runData(t, s, ferry.DataRequest{URL: url + "/login"})
	if res, _ := runData(t, s, ferry.DataRequest{URL: url + "/private"}); res.StatusCode != http.StatusForbidden || s.Cookies() != nil {
		t.Errorf("NoCookies: %d, jar %v; want 403 and none", res.StatusCode, s.Cookies())
	}

	bad := testConfig(false)
	bad.StateDir = t.TempDir()
	os.WriteFile(filepath.Join(bad.StateDir, "cookies.txt"), []byte("not\ta cookie\n"), 0o600)
	if _, err := ferry.NewSession(bad); !errors.Is(err, ferry.ErrInvalidConfig) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a broken cookies.txt: %v, want ErrInvalidConfig naming the line", err)
	}
}

// cookies.txt as curl -c writes it: subdomain cookies with a leading dot,
// #HttpOnly_, 0 for a session cookie.
const curlJar = `# Netscape HTTP Cookie File
# https://curl.se/docs/http-cookies.html
# This file was generated by libcurl! Edit at your own risk.

#HttpOnly_example.com	FALSE	/	FALSE	0	sid	abc
.example.com	TRUE	/app	TRUE	4102444800	pref	dark
example.com	FALSE	/	FALSE	946684800	old	expired
`

func TestCookieJarNetscapeFormat(t *testing.T) {
	j := ferry.NewCookieJar()
	if err := j.Import(strings.NewReader(curlJar)); err != nil {
		t.Fatal(err)
	}
	got := func(raw string) string {
		u, _ := url.Parse(raw)
		var names []string
		for _, c := range j.Cookies(u) {
			names = append(names, c.Name+"="+c.Value)
		}
		return strings.Join(names, "; ")
	}
	for raw, want := range map[string]string{
		"http://example.com/":           "sid=abc",
		"https://www.example.com/app/x": "pref=dark",
		"https://example.com/app":       "pref=dark; sid=abc", // the longer path first (RFC 6265 §5.4)
		"http://example.com/app":        "sid=abc",            // pref is secure
		"https://example.org/":          "",
	} {
		if g := got(raw); g != want {
			t.Errorf("%s gets %q, want %q", raw, g, want)
		}
	}
	var out strings.Builder
	if err := j.Export(&out); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"#HttpOnly_example.com\tFALSE\t/\tFALSE\t0\tsid\tabc\n",
		".example.com\tTRUE\t/app\tTRUE\t4102444800\tpref\tdark\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("export lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "expired") {
		t.Errorf("export keeps an expired cookie:\n%s", out.String())
	}
	if err := ferry.NewCookieJar().Import(strings.NewReader("example.com\tFALSE\t/\n")); err == nil {
		t.Error("a line of three fields was taken")
	}
}

// A cookie for a public suffix is refused, as is one for a domain the
// response's host is not in; a cookie with Max-Age=0 is removed.
func TestCookieJarRefuses(t *testing.T) {
	j := ferry.NewCookieJar()
	u, _ := url.Parse("https://shop.example.co.uk/")
	j.SetCookies(u, []*http.Cookie{
		{Name: "suffix", Value: "1", Domain: "co.uk"},
		{Name: "foreign", Value: "2", Domain: "example.com"},
		{Name: "mine", Value: "3", Domain: "example.co.uk"},
	})
	var out strings.Builder
	j.Export(&out)
	if strings.Contains(out.String(), "suffix") || strings.Contains(out.String(), "foreign") || !strings.Contains(out.String(), ".example.co.uk\tTRUE\t/\tFALSE\t0\tmine\t3") {
		t.Errorf("export:\n%s", out.String())
	}
	j.SetCookies(u, []*http.Cookie{{Name: "mine", Value: "", Domain: "example.co.uk", MaxAge: -1}})
	out.Reset()
	j.Export(&out)
	if strings.Contains(out.String(), "mine") {
		t.Errorf("a deleted cookie is still exported:\n%s", out.String())
	}
}

// A site cannot remove another site's cookie from what is saved, and the
// session's own cookies.txt is never read through a link.
func TestCookieJarKeepsOthersCookies(t *testing.T) {
	j := ferry.NewCookieJar()
	victim, _ := url.Parse("https://victim.example/")
	evil, _ := url.Parse("https://evil.test/")
	j.SetCookies(victim, []*http.Cookie{{Name: "sid", Value: "mine", MaxAge: 3600}})
	j.SetCookies(evil, []*http.Cookie{{Name: "sid", Value: "", Domain: "victim.example", MaxAge: -1}})
	var out strings.Builder
	j.Export(&out)
	if !strings.Contains(out.String(), "victim.example\tFALSE\t/\tFALSE") || !strings.Contains(out.String(), "\tsid\tmine") {
		t.Errorf("another site's removal dropped the cookie from the export:\n%s", out.String())
	}
	j.SetCookies(victim, []*http.Cookie{{Name: "sid", Value: "", MaxAge: -1}})
	out.Reset()
	j.Export(&out)
	if strings.Contains(out.String(), "sid") {
		t.Errorf("the site's own removal kept the cookie:\n%s", out.String())
	}

	state := t.TempDir()
	planted := filepath.Join(t.TempDir(), "theirs.txt")
	os.WriteFile(planted, []byte(curlJar), 0o644)
	if err := os.Symlink(planted, filepath.Join(state, "cookies.txt")); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(false)
	cfg.StateDir = state
	if _, err := ferry.NewSession(cfg); !errors.Is(err, ferry.ErrInvalidConfig) || !errors.Is(err, ferry.ErrUnsafeFile) {
		t.Errorf("a cookies.txt that is a link: %v, want ErrInvalidConfig and ErrUnsafeFile", err)
	}
}
