package peer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// NginxConfig says what a started nginx serves.
type NginxConfig struct {
	// Root is the directory served at /. Required.
	Root string
	// Listen is the address, "host:port"; port 0 picks a free one. The
	// default is 127.0.0.1:0.
	Listen string
	// Locations are served besides / and /healthz.
	Locations []Location
	// AccessLog writes access.log in Dir, one line per request with its
	// Range and If-Range headers; see Nginx.AccessLog.
	AccessLog bool
	// Bin is the nginx binary; the default is FindBinary("nginx").
	Bin string
	// Netns is the network namespace nginx runs in (a name under
	// NetnsDir or a path); "" is this process's. Listen is an address
	// there.
	Netns string
}

// Location is an nginx prefix location.
type Location struct {
	// Path is the location's prefix, e.g. "/slow/".
	Path string
	// Alias is the directory served at Path; the default is the Root.
	Alias string
	// LimitRate is nginx's limit_rate for the location, in bytes per
	// second per connection ("20m" is 20 MiB/s); "" means no limit.
	LimitRate string
	// SendfileMaxChunk is nginx's sendfile_max_chunk for the location
	// ("" keeps nginx's default, 2m). With LimitRate, nginx sends a
	// request's first chunk at once and then waits long enough for the
	// rate after each chunk: a small chunk ("64k") holds the rate from a
	// request's first bytes, where the default lets any response of up
	// to 2 MiB out at full speed.
	SendfileMaxChunk string
	// BasicAuthUsers, if set, is an auth_basic_user_file (htpasswd
	// lines, such as "user:{SHA}base64") the location demands a login
	// of, in the realm "ferry".
	BasicAuthUsers string
	// DAVPut takes PUTs into the location's directory (dav_methods PUT),
	// with bodies of any size; it must be writable by nginx.
	DAVPut bool
}

// Nginx is a running nginx.
type Nginx struct {
	*Server
	// Version is nginx's version, e.g. "nginx/1.22.1".
	Version string
}

// StartNginx starts nginx in the foreground with a generated configuration
// serving cfg (see the package comment). ctx bounds the start, not the
// server's life: call Stop.
func StartNginx(ctx context.Context, cfg NginxConfig) (*Nginx, error) {
	bin := cfg.Bin
	if bin == "" {
		var err error
		if bin, err = FindBinary("nginx"); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	asRoot := os.Geteuid() == 0
	srv, err := startServerIn(ctx, cfg.Netns, "nginx", "http", cfg.Listen, func(dir, addr string) (*process, []string, error) {
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, []byte(cfg.render(dir, addr, asRoot)), 0o644); err != nil {
			return nil, nil, err
		}
		p, err := startProcessIn(cfg.Netns, filepath.Join(dir, "stderr.log"), bin,
			"-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", path)
		return p, []string{"stderr.log", "error.log"}, err
	})
	if err != nil {
		return nil, err
	}
	return &Nginx{Server: srv, Version: nginxVersion(ctx, bin)}, nil
}

// AccessLog returns the lines of the access log so far (none unless
// NginxConfig.AccessLog was set): client, request, status, body bytes,
// range="..." if_range="..." and the request time.
func (n *Nginx) AccessLog() []string {
	b, err := os.ReadFile(filepath.Join(n.Dir, "access.log"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// NginxVersion returns the version of the nginx that FindBinary finds,
// e.g. "nginx/1.22.1", or "" when there is none.
func NginxVersion(ctx context.Context) string {
	bin, err := FindBinary("nginx")
	if err != nil {
		return ""
	}
	return nginxVersion(ctx, bin)
}

func nginxVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimPrefix(strings.TrimSpace(line), "nginx version: ")
}

// validate checks that cfg makes a valid nginx.conf: its paths and values
// go into it unquoted.
func (cfg NginxConfig) validate() error {
	if cfg.Root == "" {
		return fmt.Errorf("nginx: no Root")
	}
	words := []string{cfg.Root}
	for _, l := range cfg.Locations {
		if !strings.HasPrefix(l.Path, "/") || l.Path == "/" {
			return fmt.Errorf("nginx: location %q: want a path below / (Root is served at /)", l.Path)
		}
		words = append(words, l.Path, l.Alias, l.LimitRate, l.SendfileMaxChunk, l.BasicAuthUsers)
	}
	for _, w := range words {
		if i := strings.IndexAny(w, " \t\r\n;{}\"'$\\#"); i >= 0 {
			return fmt.Errorf("nginx: %q: %q cannot stand unquoted in nginx.conf", w, w[i])
		}
	}
	return nil
}

// render returns nginx.conf for an nginx with its files in dir, listening
// on addr. asRoot says nginx runs as root, whose workers would otherwise
// drop to "nobody" and could not read private temporary directories.
func (cfg NginxConfig) render(dir, addr string, asRoot bool) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# generated by ferry's internal/peer")
	line("daemon off;")
	line("master_process on;")
	line("worker_processes 1;")
	if asRoot {
		line("user root root;")
	}
	line("pid %s/nginx.pid;", dir)
	line("error_log %s/error.log warn;", dir)
	line("events { worker_connections 256; }")
	line("http {")
	if cfg.AccessLog {
		line(`    log_format ferry '$remote_addr "$request" $status $body_bytes_sent '`)
		line(`                     'range="$http_range" if_range="$http_if_range" $request_time';`)
		line("    access_log %s/access.log ferry;", dir)
	} else {
		line("    access_log off;")
	}
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		line("    %s_temp_path %s/%s;", t, dir, t)
	}
	line("    types { }")
	line("    default_type application/octet-stream;")
	line("    sendfile on;")
	line("    tcp_nopush on;")
	line("    keepalive_timeout 30s;")
	line("    server {")
	line("        listen %s;", addr)
	line("        root %s;", cfg.Root)
	line(`        location = /healthz { return 200 "ok\n"; }`)
	line("        location / { }")
	for _, l := range cfg.Locations {
		alias := l.Alias
		if alias == "" {
			alias = cfg.Root
		}
		// A location ending in / maps onto a directory alias ending in /.
		if strings.HasSuffix(l.Path, "/") && !strings.HasSuffix(alias, "/") {
			alias += "/"
		}
		line("        location %s {", l.Path)
		line("            alias %s;", alias)
		if l.LimitRate != "" {
			line("            limit_rate %s;", l.LimitRate)
		}
		if l.SendfileMaxChunk != "" {
			line("            sendfile_max_chunk %s;", l.SendfileMaxChunk)
		}
		if l.BasicAuthUsers != "" {
			line(`            auth_basic "ferry";`)
			line("            auth_basic_user_file %s;", l.BasicAuthUsers)
		}
		if l.DAVPut {
			line("            dav_methods PUT;")
			line("            create_full_put_path on;")
			line("            client_max_body_size 0;")
		}
		line("        }")
	}
	line("    }")
	line("}")
	return b.String()
}
