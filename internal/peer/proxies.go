package peer

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ProxyConfig says how a started forward proxy runs.
type ProxyConfig struct {
	// User and Password, if set, are the login the proxy demands
	// (tinyproxy's BasicAuth). Dante takes none.
	User, Password string
	// Bin is the proxy's binary; the default is FindBinary of
	// "tinyproxy" or "danted".
	Bin string
}

// StartTinyproxy starts tinyproxy, an HTTP forward proxy (absolute-form
// requests and CONNECT), on a free loopback port. Its URL is the proxy's,
// without the login. ctx bounds the start: call Stop.
func StartTinyproxy(ctx context.Context, cfg ProxyConfig) (*Server, error) {
	for _, w := range []string{cfg.User, cfg.Password} {
		if strings.ContainsAny(w, " \t\r\n\"") {
			return nil, fmt.Errorf("tinyproxy: %q cannot stand in its configuration", w)
		}
	}
	return startProxy(ctx, "tinyproxy", "http", cfg, func(dir, host, port string) []string {
		conf := []string{
			"Port " + port,
			"Listen " + host,
			"Timeout 60",
			"MaxClients 64",
			"Allow 127.0.0.1",
			"DisableViaHeader Yes",
			"LogLevel Info",
			`LogFile "` + filepath.Join(dir, "tinyproxy.log") + `"`,
			`PidFile "` + filepath.Join(dir, "tinyproxy.pid") + `"`,
		}
		if os.Geteuid() == 0 {
			conf = append(conf, "User root", "Group root")
		}
		if cfg.User != "" {
			conf = append(conf, "BasicAuth "+cfg.User+" "+cfg.Password)
		}
		return conf
	}, func(bin, conf string) []string { return []string{bin, "-d", "-c", conf} }, "tinyproxy.log")
}

// StartDante starts Dante's danted, a SOCKS5 proxy without a login, on a
// free loopback port; its URL is socks5://host:port. ctx bounds the
// start: call Stop.
func StartDante(ctx context.Context, cfg ProxyConfig) (*Server, error) {
	return startProxy(ctx, "danted", "socks5", cfg, func(dir, host, port string) []string {
		conf := []string{
			"logoutput: " + filepath.Join(dir, "danted.log"),
			"internal: " + host + " port = " + port,
			"external: " + host,
			"socksmethod: none",
			"clientmethod: none",
		}
		if os.Geteuid() == 0 {
			conf = append(conf, "user.privileged: root", "user.unprivileged: nobody")
		}
		return append(conf,
			"client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
			"socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect }")
	}, func(bin, conf string) []string { return []string{bin, "-f", conf} }, "danted.log")
}

// startProxy starts the proxy name with the configuration lines conf
// gives, and waits until a request through it reaches an origin of its
// own.
func startProxy(ctx context.Context, name, scheme string, cfg ProxyConfig, conf func(dir, host, port string) []string, argv func(bin, conf string) []string, log string) (*Server, error) {
	bin := cfg.Bin
	if bin == "" {
		var err error
		if bin, err = FindBinary(name); err != nil {
			return nil, err
		}
	}
	origin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	healthy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })}
	go healthy.Serve(origin)
	defer healthy.Close()
	poll := func(s *Server) (*http.Client, string) {
		u, _ := url.Parse(s.URL)
		if cfg.User != "" {
			u.User = url.UserPassword(cfg.User, cfg.Password)
		}
		return &http.Client{Timeout: healthClient.Timeout, Transport: &http.Transport{Proxy: http.ProxyURL(u), DisableKeepAlives: true}},
			"http://" + origin.Addr().String() + "/healthz"
	}
	return startServerWith(ctx, "", name, scheme, "", poll, func(dir, addr string) (*process, []string, error) {
		host, port, _ := net.SplitHostPort(addr)
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, []byte(strings.Join(conf(dir, host, port), "\n")+"\n"), 0o644); err != nil {
			return nil, nil, err
		}
		args := argv(bin, path)
		p, err := startProcessIn("", filepath.Join(dir, "stderr.log"), args[0], args[1:]...)
		return p, []string{"stderr.log", log}, err
	})
}
