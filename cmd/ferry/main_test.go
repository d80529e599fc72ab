package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/server"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ferry": func() {
			limitFileSize()
			ctx, stop := signalContext()
			code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		},
	})
}

// limitFileSize applies $FERRY_TEST_FSIZE as the process's file size
// limit: writes past it fail (EFBIG) as on a full disk, without needing a
// filesystem to fill or privileges.
func limitFileSize() {
	n, err := strconv.ParseUint(os.Getenv("FERRY_TEST_FSIZE"), 10, 64)
	if err != nil {
		return
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		panic(err)
	}
}

// TestScripts runs the CLI scenarios in testdata/script. Each script gets
// origins on loopback serving $WORK/origin: $ORIGIN, a plain ferry origin;
// $FLAKY, the same behind a fault that cuts the first full GET of each file
// after 1 MiB; $TLSORIGIN, the same over https with a certificate of an
// authority only $WORK/ca.pem holds. $CLOSED is a loopback address nothing
// listens on.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			root := filepath.Join(env.WorkDir, "origin")
			if err := os.MkdirAll(root, 0o755); err != nil {
				return err
			}
			uploads := filepath.Join(env.WorkDir, ".uploads")
			if err := os.MkdirAll(uploads, 0o755); err != nil {
				return err
			}
			env.Setenv("XDG_STATE_HOME", filepath.Join(env.WorkDir, ".state"))
			// The scripts' origin serves dot files: they name the files they need.
			srv, err := server.New(server.Config{Root: root, Uploads: uploads, ServeDotFiles: true})
			if err != nil {
				return err
			}
			plain := httptest.NewServer(srv)
			// A drop box as WebDAV or a presigned URL is: a PUT or POST
			// stores its body under the path's base name in
			// $WORK/dropbox, and the answer is 201 with a receipt.
			box := filepath.Join(env.WorkDir, "dropbox")
			if err := os.MkdirAll(box, 0o755); err != nil {
				return err
			}
			dropbox := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					// What the request said of itself.
					fmt.Fprintf(w, "User-Agent=%s Referer=%s\n", r.UserAgent(), r.Referer())
					return
				}
				if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
					// A form: each file part is stored under its file
					// name, and the answer lists the parts.
					mr, err := r.MultipartReader()
					if err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					w.WriteHeader(http.StatusCreated)
					for {
						p, err := mr.NextPart()
						if err != nil {
							return
						}
						b, _ := io.ReadAll(p)
						if p.FileName() == "" {
							fmt.Fprintf(w, "%s=%s\n", p.FormName(), b)
							continue
						}
						os.WriteFile(filepath.Join(box, filepath.Base(p.FileName())), b, 0o644)
						fmt.Fprintf(w, "%s: %s (%s)\n", p.FormName(), p.FileName(), p.Header.Get("Content-Type"))
					}
				}
				b, err := io.ReadAll(r.Body)
				if err != nil || os.WriteFile(filepath.Join(box, filepath.Base(r.URL.Path)), b, 0o644) != nil {
					http.Error(w, "not stored", http.StatusInternalServerError)
					return
				}
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, r.Method+" stored")
			}))
			// A site that sets a session cookie at /login and serves
			// /private only with it, and /vault only to alice.
			login := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/vault" {
					if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "wonderland" {
						w.Header().Set("WWW-Authenticate", `Basic realm="vault"`)
						http.Error(w, "who are you?", http.StatusUnauthorized)
						return
					}
					io.WriteString(w, "the vault\n")
					return
				}
				if n, ok := strings.CutPrefix(r.URL.Path, "/hop/"); ok {
					if k, _ := strconv.Atoi(n); k > 0 {
						http.Redirect(w, r, fmt.Sprintf("/hop/%d", k-1), http.StatusFound)
						return
					}
					io.WriteString(w, "arrived\n")
					return
				}
				if r.URL.Path == "/login" {
					http.SetCookie(w, &http.Cookie{Name: "sid", Value: "s3cr3t", Path: "/", MaxAge: 3600, HttpOnly: true})
					io.WriteString(w, "welcome\n")
					return
				}
				if c, err := r.Cookie("sid"); err != nil || c.Value != "s3cr3t" {
					http.Error(w, "log in first", http.StatusForbidden)
					return
				}
				io.WriteString(w, "private data\n")
			}))
			flaky := httptest.NewServer(cutFirstFullGET(srv, 1<<20))
			// An https origin whose certificate no system trusts; its
			// authority is in $WORK/ca.pem.
			untrusted := httptest.NewUnstartedServer(srv)
			untrusted.Config.ErrorLog = log.New(io.Discard, "", 0)
			untrusted.StartTLS()
			env.Defer(func() {
				plain.Close()
				dropbox.Close()
				login.Close()
				flaky.Close()
				untrusted.Close()
				srv.Close()
			})
			ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: untrusted.Certificate().Raw})
			if err := os.WriteFile(filepath.Join(env.WorkDir, "ca.pem"), ca, 0o644); err != nil {
				return err
			}
			closed, err := closedAddr()
			if err != nil {
				return err
			}
			env.Setenv("ORIGIN", plain.URL)
			env.Setenv("DROPBOX", dropbox.URL)
			env.Setenv("LOGIN", login.URL)
			env.Setenv("FLAKY", flaky.URL)
			env.Setenv("TLSORIGIN", untrusted.URL)
			env.Setenv("CLOSED", closed)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mkfile":   cmdMkfile,
			"sha256":   cmdSHA256,
			"waitsize": cmdWaitSize,
		},
	})
}

// closedAddr is a loopback address nothing listens on.
func closedAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// cutFirstFullGET drops the connection of the first unranged GET of each
// path after limit bytes.
func cutFirstFullGET(next http.Handler, limit int64) http.Handler {
	var mu sync.Mutex
	seen := map[string]bool{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := r.Method == http.MethodGet && r.Header.Get("Range") == "" && !seen[r.URL.Path]
		if first {
			seen[r.URL.Path] = true
		}
		mu.Unlock()
		if first {
			w = &cuttingWriter{ResponseWriter: w, left: limit}
		}
		next.ServeHTTP(w, r)
	})
}

// mkfile NAME SIZE writes SIZE pseudo-random bytes (seeded by NAME) to NAME.
func cmdMkfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mkfile NAME SIZE")
	}
	size, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	var seed [32]byte
	copy(seed[:], args[0])
	_, err = io.CopyN(f, rand.NewChaCha8(seed), size)
	ts.Check(err)
	ts.Check(f.Close())
}

// sha256 FILE VAR sets $VAR to the hex sha-256 of FILE.
func cmdSHA256(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sha256 FILE VAR")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	ts.Check(err)
	ts.Setenv(args[1], hex.EncodeToString(h.Sum(nil)))
}

// waitsize FILE N waits (up to 30s) until FILE holds at least N bytes.
func cmdWaitSize(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitsize FILE N")
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if fi, err := os.Stat(ts.MkAbs(args[0])); err == nil && fi.Size() >= n {
			return
		}
	}
	ts.Fatalf("%s did not reach %d bytes in 30s", args[0], n)
}

// TestExitCodes pins the documented exit codes.
func TestExitCodes(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "f"), []byte("hello, ferry\n"), 0o644)
	srv, err := server.New(server.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	out := t.TempDir()
	// A case that forgets -o, or a regression that ignores it, saves
	// under the URL's name here, not in the source tree.
	t.Chdir(t.TempDir())
	const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
	// A link where ferry would write is refused with one code wherever it
	// is, at FILE, FILE.part or FILE.ferry: 1, since the files found there,
	// not the command line, are at fault.
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("mine\n"), 0o644)
	for _, name := range []string{"link", "part.part", "control.ferry"} {
		if err := os.Symlink(victim, filepath.Join(out, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"ok", []string{"get", "-q", ts.URL + "/f", "-o", filepath.Join(out, "a")}, exitOK},
		{"not found", []string{"get", "-q", ts.URL + "/nope", "-o", filepath.Join(out, "b")}, exitFailed},
		{"no URL", []string{"get"}, exitUsage},
		{"bad URL", []string{"get", "ftp://x"}, exitUsage},
		{"unknown flag", []string{"get", "--bogus", ts.URL, "-o", filepath.Join(out, "e")}, exitUsage},
		{"unknown command", []string{"fetch"}, exitUsage},
		{"bad checksum syntax", []string{"get", "--checksum", "md5=1", ts.URL + "/f", "-o", filepath.Join(out, "e")}, exitUsage},
		{"checksum mismatch", []string{"get", "-q", "--checksum", "sha-256=" + zeros, ts.URL + "/f", "-o", filepath.Join(out, "c")}, exitIntegrity},
		{"put: no such file", []string{"put", filepath.Join(out, "none"), ts.URL + "/files/"}, exitUsage},
		{"put: unknown protocol", []string{"put", filepath.Join(root, "f"), ts.URL + "/files/", "--protocol", "ftp"}, exitUsage},
		{"put: one argument", []string{"put", filepath.Join(root, "f")}, exitUsage},
		{"negative --retry", []string{"get", ts.URL + "/f", "-o", filepath.Join(out, "e"), "--retry", "-1"}, exitUsage},
		{"negative --idle-timeout", []string{"get", ts.URL + "/f", "-o", filepath.Join(out, "e"), "--idle-timeout", "-1s"}, exitUsage},
		{"negative --connect-timeout", []string{"put", filepath.Join(root, "f"), ts.URL + "/files/", "--connect-timeout", "-1s"}, exitUsage},
		{"get -x 1000000", []string{"get", "-q", ts.URL + "/f", "-o", filepath.Join(out, "e"), "-x", "1000000"}, exitUsage},
		{"get -x 65", []string{"get", "-q", ts.URL + "/f", "-o", filepath.Join(out, "e"), "-x", "65"}, exitUsage},
		{"put -x 65", []string{"put", "-q", filepath.Join(root, "f"), ts.URL + "/files/", "-x", "65"}, exitUsage},
		{"put --chunk-size 1", []string{"put", "-q", filepath.Join(root, "f"), ts.URL + "/files/", "--chunk-size", "1"}, exitUsage},
		{"hls -x 1000000", []string{"hls", "-q", ts.URL + "/f", "-o", filepath.Join(out, "h"), "-x", "1000000"}, exitUsage},
		{"--speed-limit NaN", []string{"get", "-q", ts.URL + "/f", "-o", filepath.Join(out, "e"), "--speed-limit", "NaN"}, exitUsage},
		{"--speed-limit 1e30", []string{"get", "-q", ts.URL + "/f", "-o", filepath.Join(out, "e"), "--speed-limit", "1e30"}, exitUsage},
		{"--limit-rate Inf", []string{"get", "-q", ts.URL + "/f", "-o", filepath.Join(out, "e"), "--limit-rate", "Inf"}, exitUsage},
		{"a link at FILE", []string{"get", "-q", ts.URL + "/f", "-o", filepath.Join(out, "link")}, exitFailed},
		{"a link at FILE.part", []string{"get", "-q", ts.URL + "/f", "-o", filepath.Join(out, "part")}, exitFailed},
		{"a link at FILE.ferry", []string{"get", "-q", ts.URL + "/f", "-o", filepath.Join(out, "control")}, exitFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(context.Background(), tt.args, nil, io.Discard, io.Discard); got != tt.want {
				t.Errorf("ferry %v: exit %d, want %d", tt.args, got, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(out, "c")); err == nil {
		t.Error("a checksum mismatch left the file under its final name")
	}
	for _, name := range []string{"e", "e.part", "e.ferry", "h"} {
		if _, err := os.Lstat(filepath.Join(out, name)); err == nil {
			t.Errorf("a usage error left %s", name)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "mine\n" {
		t.Errorf("the file behind the links now holds %q", b)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := run(ctx, []string{"get", "-q", ts.URL + "/f", "-o", filepath.Join(out, "d")}, nil, io.Discard, io.Discard); got != exitInterrupted {
		t.Errorf("interrupted: exit %d, want %d", got, exitInterrupted)
	}
}

// TestDemo runs the README's first command end to end.
func TestDemo(t *testing.T) {
	var out syncBuffer
	if code := run(context.Background(), []string{"demo"}, nil, &out, &out); code != exitOK {
		t.Fatalf("ferry demo exited %d:\n%s", code, out.String())
	}
	for _, want := range []string{"Interrupted at", "resumed from", "matches the origin", "Stored at"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out.String())
		}
	}
}

// The help of every command that takes -x states its bound, the bg forms
// as the foreground commands do; get's says whose device or FIFO it
// writes to.
func TestHelpStatesTheLimits(t *testing.T) {
	bound := "at most " + strconv.Itoa(ferry.MaxConnections)
	for _, cmd := range [][]string{{"get"}, {"put"}, {"hls"}, {"bg", "get"}, {"bg", "put"}, {"bg", "hls"}} {
		var out bytes.Buffer
		if code := run(context.Background(), append(cmd, "--help"), nil, &out, io.Discard); code != exitOK {
			t.Fatalf("ferry %s --help: exit %d", strings.Join(cmd, " "), code)
		}
		var x string
		for line := range strings.Lines(out.String()) {
			if strings.Contains(line, "--connections") {
				x = line
			}
		}
		if !strings.Contains(x, bound) {
			t.Errorf("ferry %s --help: -x says %q, want %q", strings.Join(cmd, " "), strings.TrimSpace(x), bound)
		}
		if cmd[0] == "get" && !strings.Contains(out.String(), "a device or FIFO only when you or root own it") {
			t.Errorf("ferry get --help does not say whose device or FIFO it writes:\n%s", out.String())
		}
	}
}
