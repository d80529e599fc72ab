//go:build interop

package interop

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

func startProxyPeer(t *testing.T, name string, start func(context.Context, peer.ProxyConfig) (*peer.Server, error), cfg peer.ProxyConfig) *peer.Server {
	t.Helper()
	cfg.Bin = needPeer(t, name)
	s, err := start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%s did not start: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, tail(s.Logs(), 4000))
		}
		stopPeer(t, s)
	})
	return s
}

// Downloads through tinyproxy, which demands a login: plain http as
// absolute requests, https through CONNECT; refused without the login.
func TestGetThroughTinyproxy(t *testing.T) {
	proxy := startProxyPeer(t, "tinyproxy", peer.StartTinyproxy, peer.ProxyConfig{User: "pat", Password: "proxypass"})
	ng := startNginx(t, nginxOptions{})
	path, want := fixture(t, "proxy-16m.bin", 16*MiB)
	tlsOrigin := startFerryServe(t, dataDir, true)
	dir := t.TempDir()
	for i, url := range []string{ng.URL + "/" + filepath.Base(path), tlsOrigin.URL + "/" + filepath.Base(path)} {
		out := filepath.Join(dir, "out"+string(rune('a'+i)))
		r := runCmd(t, time.Minute, ferryBin, "get", "-q", "-k", "-x", "4", "--proxy", proxy.URL, "--proxy-user", "pat:proxypass", "-o", out, url)
		if r.exitCode != 0 {
			t.Fatalf("through tinyproxy: %s", r)
		}
		assertSameFile(t, out, 16*MiB, want)
	}
	r := runCmd(t, time.Minute, ferryBin, "get", "-q", "--proxy", proxy.URL, "-o", filepath.Join(dir, "refused"), ng.URL+"/"+filepath.Base(path))
	if r.exitCode == 0 || !strings.Contains(r.stderr, "407") {
		t.Errorf("through tinyproxy without its login: %s", r)
	}
	log, _ := os.ReadFile(filepath.Join(proxy.Dir, "tinyproxy.log"))
	if !strings.Contains(string(log), "CONNECT") {
		t.Errorf("tinyproxy's log shows no CONNECT:\n%s", tail(string(log), 3000))
	}
}

// Downloads through Dante, a SOCKS5 proxy, with the proxy resolving the
// host name (socks5h).
func TestGetThroughDante(t *testing.T) {
	proxy := startProxyPeer(t, "danted", peer.StartDante, peer.ProxyConfig{})
	ng := startNginx(t, nginxOptions{})
	path, want := fixture(t, "socks-16m.bin", 16*MiB)
	socks5h := strings.Replace(proxy.URL, "socks5://", "socks5h://", 1)
	// localhost, resolved by the proxy, not by ferry.
	url := strings.Replace(ng.URL, "127.0.0.1", "localhost", 1) + "/" + filepath.Base(path)
	out := filepath.Join(t.TempDir(), "out")
	if r := runCmd(t, time.Minute, ferryBin, "get", "-q", "-x", "4", "--proxy", socks5h, "-o", out, url); r.exitCode != 0 {
		t.Fatalf("through Dante: %s", r)
	}
	assertSameFile(t, out, 16*MiB, want)
	log, _ := os.ReadFile(filepath.Join(proxy.Dir, "danted.log"))
	if !strings.Contains(string(log), "pass(1): tcp/connect") {
		t.Errorf("Dante's log shows no connection it passed:\n%s", tail(string(log), 3000))
	}
}
