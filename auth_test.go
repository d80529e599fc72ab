package ferry_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// authSite demands credentials for realm "vault": Basic, or Digest with
// the algorithms it offers (verified as RFC 7616 says), and counts the
// requests and the challenges it sent.
type authSite struct {
	user, pass string
	digest     []string // algorithms offered; none: Basic
	mu         sync.Mutex
	requests   int
	challenges int
	bodies     []string
	used       string // the Digest algorithm last answered with
}

func (a *authSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.requests++
	a.mu.Unlock()
	if !a.authorized(r) {
		a.mu.Lock()
		a.challenges++
		a.mu.Unlock()
		if len(a.digest) == 0 {
			w.Header().Set("WWW-Authenticate", `Basic realm="vault"`)
		}
		for _, alg := range a.digest {
			w.Header().Add("WWW-Authenticate", fmt.Sprintf(`Digest realm="vault", qop="auth", algorithm=%s, nonce="n0nce", opaque="0paque"`, alg))
		}
		http.Error(w, "who are you?", http.StatusUnauthorized)
		return
	}
	a.mu.Lock()
	a.bodies = append(a.bodies, string(body))
	a.mu.Unlock()
	fmt.Fprintf(w, "the vault's contents")
}

func (a *authSite) authorized(r *http.Request) bool {
	if len(a.digest) == 0 {
		u, p, ok := r.BasicAuth()
		return ok && u == a.user && p == a.pass
	}
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Digest ")
	if !ok {
		return false
	}
	f := map[string]string{}
	for _, kv := range strings.Split(v, ", ") {
		k, val, _ := strings.Cut(kv, "=")
		f[k] = strings.Trim(val, `"`)
	}
	var h func() hash.Hash
	switch f["algorithm"] {
	case "SHA-256":
		h = sha256.New
	case "MD5":
		h = md5.New
	default:
		return false
	}
	sum := func(s string) string { x := h(); io.WriteString(x, s); return hex.EncodeToString(x.Sum(nil)) }
	ha1 := sum(a.user + ":vault:" + a.pass)
	ha2 := sum(r.Method + ":" + r.URL.RequestURI())
	want := sum(strings.Join([]string{ha1, "n0nce", f["nc"], f["cnonce"], "auth", ha2}, ":"))
	a.mu.Lock()
	a.used = f["algorithm"]
	a.mu.Unlock()
	return f["username"] == a.user && f["uri"] == r.URL.RequestURI() && f["opaque"] == "0paque" && f["response"] == want
}

func (a *authSite) counts() (requests, challenges int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests, a.challenges
}

func authConfig(h2 bool, creds *ferry.Credentials) ferry.Config {
	cfg := testConfig(h2)
	cfg.Ephemeral = true
	cfg.Credentials = creds
	return cfg
}

func TestAuthBasicAndDigest(t *testing.T) {
	for name, algs := range map[string][]string{"basic": nil, "digest-md5": {"MD5"}, "digest-sha256": {"MD5", "SHA-256"}} {
		t.Run(name, func(t *testing.T) {
			proto(t, func(t *testing.T, h2 bool) {
				site := &authSite{user: "alice", pass: "wonderland", digest: algs}
				url := newServer(t, h2, ferrytest.Handler(func(http.Handler) http.Handler { return site })).URL
				creds := ferry.NewCredentials()
				if err := creds.Set(url, "vault", ferry.Credential{User: "alice", Password: "wonderland"}); err != nil {
					t.Fatal(err)
				}
				s := mustSession(t, authConfig(h2, creds))
				path := filepath.Join(t.TempDir(), "vault")
				if _, _, err := download(t, s, ferry.DownloadRequest{URL: url + "/vault", Path: path}); err != nil {
					t.Fatalf("download: %v", err)
				}
				// A POST's body goes again with the answer.
				res, err := runData(t, s, ferry.DataRequest{URL: url + "/deposit", Body: []byte("gold")})
				if err != nil || res.StatusCode != 200 {
					t.Fatalf("POST: %v %v", res, err)
				}
				site.mu.Lock()
				deposited := site.bodies[len(site.bodies)-1]
				site.mu.Unlock()
				if deposited != "gold" {
					t.Errorf("the answered POST carried %q", deposited)
				}
				site.mu.Lock()
				used := site.used
				site.mu.Unlock()
				if len(algs) > 0 && used != algs[len(algs)-1] {
					t.Errorf("answered with %s, want the strongest offered, %s", used, algs[len(algs)-1])
				}
				// One challenge: what answered it goes with the next requests.
				if _, challenges := site.counts(); challenges != 1 {
					t.Errorf("%d challenges for two tasks, want 1", challenges)
				}
			})
		})
	}
}

// A wrong password is tried once: the 401 is the answer.
func TestAuthWrongPassword(t *testing.T) {
	site := &authSite{user: "alice", pass: "wonderland", digest: []string{"SHA-256"}}
	url := newServer(t, false, ferrytest.Handler(func(http.Handler) http.Handler { return site })).URL
	creds := ferry.NewCredentials()
	creds.Set(url, "", ferry.Credential{User: "alice", Password: "guess"})
	s := mustSession(t, authConfig(false, creds))
	res, err := runData(t, s, ferry.DataRequest{URL: url + "/vault"})
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %v %v", res, err)
	}
	if requests, _ := site.counts(); requests != 2 {
		t.Errorf("%d requests, want the first and one answer", requests)
	}
	_, _, err = download(t, s, ferry.DownloadRequest{URL: url + "/vault", Path: filepath.Join(t.TempDir(), "v")})
	var se *ferry.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
		t.Errorf("a download refused: %v, want a *StatusError 401", err)
	}
}

// .netrc answers by host, and Challenge is asked last.
func TestAuthNetrcAndChallenge(t *testing.T) {
	site := &authSite{user: "bob", pass: "builder"}
	url := newServer(t, false, ferrytest.Handler(func(http.Handler) http.Handler { return site })).URL
	netrc := filepath.Join(t.TempDir(), "netrc")
	os.WriteFile(netrc, []byte("machine 127.0.0.1 login bob password builder\n"), 0o600)
	cfg := authConfig(false, nil)
	cfg.NetrcFile = netrc
	if res, err := runData(t, mustSession(t, cfg), ferry.DataRequest{URL: url + "/vault"}); err != nil || res.StatusCode != 200 {
		t.Errorf("with .netrc: %v %v", res, err)
	}

	// A .netrc answers the task's own origin only: not a redirect to the
	// same host by another origin, even with a default login.
	other := &authSite{user: "bob", pass: "builder"}
	otherURL := newServer(t, false, ferrytest.Handler(func(http.Handler) http.Handler { return other })).URL
	mover := newServer(t, false, ferrytest.Handler(func(http.Handler) http.Handler {
		return http.RedirectHandler(otherURL+"/vault", http.StatusFound)
	})).URL
	os.WriteFile(netrc, []byte("default login bob password builder\n"), 0o600)
	if res, err := runData(t, mustSession(t, cfg), ferry.DataRequest{URL: mover + "/x"}); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("a redirect to another origin answered from .netrc: %v %v, want its 401", res, err)
	}

	var asked []ferry.Challenge
	cfg = authConfig(false, nil)
	cfg.Challenge = func(ctx context.Context, c ferry.Challenge) (ferry.Credential, bool) {
		asked = append(asked, c)
		return ferry.Credential{User: "bob", Password: "builder"}, true
	}
	if res, err := runData(t, mustSession(t, cfg), ferry.DataRequest{URL: url + "/vault"}); err != nil || res.StatusCode != 200 {
		t.Errorf("with Challenge: %v %v", res, err)
	}
	if len(asked) != 1 || asked[0].Realm != "vault" || asked[0].Scheme != "basic" || asked[0].Origin != url {
		t.Errorf("Challenge was asked %+v", asked)
	}

	cfg = authConfig(false, nil)
	cfg.NetrcFile = filepath.Join(t.TempDir(), "missing")
	if _, err := ferry.NewSession(cfg); !errors.Is(err, ferry.ErrInvalidConfig) {
		t.Errorf("a NetrcFile that does not exist: %v, want ErrInvalidConfig", err)
	}
}

// A credential goes to its own origin only: a redirect to another origin
// that challenges too gets none.
func TestAuthStaysWithItsOrigin(t *testing.T) {
	other := &authSite{user: "alice", pass: "wonderland"}
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	site := &authSite{user: "alice", pass: "wonderland"}
	url := newServer(t, false, ferrytest.Handler(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/away" {
				http.Redirect(w, r, otherSrv.URL+"/vault", http.StatusFound)
				return
			}
			site.ServeHTTP(w, r)
		})
	})).URL
	creds := ferry.NewCredentials()
	creds.Set(url, "vault", ferry.Credential{User: "alice", Password: "wonderland"})
	s := mustSession(t, authConfig(false, creds))
	res, err := runData(t, s, ferry.DataRequest{URL: url + "/away"})
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the other origin answered %v, %v; want its 401", res, err)
	}
	if requests, challenges := other.counts(); requests != 1 || challenges != 1 {
		t.Errorf("the other origin saw %d requests, %d challenged: the credential was offered to it", requests, challenges)
	}
}
