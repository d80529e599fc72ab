package ferry_test

import (
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// forwardProxy is an HTTP forward proxy: absolute-form requests and
// CONNECT tunnels, demanding Basic proxy credentials when user is set.
// It records what it was asked for.
type forwardProxy struct {
	user, pass string
	mu         sync.Mutex
	seen       []string // method and target of each request
}

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.seen = append(p.seen, r.Method+" "+r.RequestURI)
	p.mu.Unlock()
	if p.user != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass))
		if r.Header.Get("Proxy-Authorization") != want {
			w.Header().Set("Proxy-Authenticate", `Basic realm="proxy"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
	}
	if r.Method == http.MethodConnect {
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		go func() { io.Copy(up, rw); up.Close() }()
		io.Copy(conn, up)
		conn.Close()
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Authorization")
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (p *forwardProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// A session's requests go through Config.Proxy: plain http as absolute
// requests, https through a CONNECT tunnel; the proxy's credentials come
// from its URL or from Credentials; metrics name the proxy.
func TestProxy(t *testing.T) {
	fp := &forwardProxy{user: "pat", pass: "proxypass"}
	proxy := httptest.NewServer(fp)
	defer proxy.Close()
	plain := ferrytest.NewServer(t, ferrytest.Size(256<<10))
	secure := ferrytest.NewServer(t, ferrytest.TLS(), ferrytest.Size(256<<10))

	creds := ferry.NewCredentials()
	creds.Set(proxy.URL, "", ferry.Credential{User: "pat", Password: "proxypass"})
	pick, err := ferry.ProxyURL(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(false)
	cfg.Ephemeral = true
	cfg.Proxy, cfg.Credentials = pick, creds
	cfg.TLSConfig = secure.Client().Transport.(*http.Transport).TLSClientConfig
	s := mustSession(t, cfg)
	for _, srv := range []*ferrytest.Server{plain, secure} {
		res, _, err := download(t, s, ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(t.TempDir(), "f"), SHA256: true})
		if err != nil {
			t.Fatalf("%s through the proxy: %v", srv.URL, err)
		}
		if res.SHA256 != srv.SHA256() {
			t.Errorf("%s: sha-256 %s", srv.URL, res.SHA256)
		}
		for _, tx := range res.Metrics.Transactions {
			if tx.Proxy != proxy.URL {
				t.Errorf("%s: a transaction says proxy %q, want %q", srv.URL, tx.Proxy, proxy.URL)
			}
		}
	}
	var connects, absolute bool
	for _, r := range fp.requests() {
		connects = connects || strings.HasPrefix(r, "CONNECT "+strings.TrimPrefix(secure.URL, "https://"))
		absolute = absolute || strings.HasPrefix(r, "GET "+plain.URL+"/f")
	}
	if !connects || !absolute {
		t.Errorf("the proxy saw %v; want a CONNECT to the https origin and absolute GETs of the plain one", fp.requests())
	}

	// Without its credentials the proxy refuses, and the task says so.
	cfg.Credentials = nil
	_, _, err = download(t, mustSession(t, cfg), ferry.DownloadRequest{URL: plain.URL + "/f", Path: filepath.Join(t.TempDir(), "g")})
	var se *ferry.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusProxyAuthRequired {
		t.Errorf("without proxy credentials: %v, want a *StatusError 407", err)
	}

	if _, err := ferry.ProxyURL("ftp://proxy:21"); !errors.Is(err, ferry.ErrInvalidConfig) {
		t.Errorf("an ftp proxy: %v", err)
	}
}
