package server_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/server"
)

// stateEnv is a server whose uploads (and so streams) live inside its root,
// as with `ferry serve --uploads up` in the default root ".", holding an
// unfinished upload, a finished one and a stored stream.
type stateEnv struct {
	*env
	uploads  string
	id, done string // an unfinished and a finished upload
	secret   []byte // the bytes of both uploads and the stream
}

const stateToken = "Authorization: Bearer T"

func newStateEnv(t *testing.T, h2c bool, cfg func(root string) server.Config) *stateEnv {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	up := filepath.Join(root, "up")
	if err := os.MkdirAll(up, 0o755); err != nil {
		t.Fatal(err)
	}
	c := cfg(root)
	c.Root = root
	c.Token = "T"
	e := &stateEnv{env: serveEnv(t, h2c, base, c), uploads: c.Uploads, secret: []byte("PRIVATE upload bytes")}
	resp, body := e.send(t, "POST", "/files/", bytes.NewReader(e.secret), tusHeader, stateToken,
		"Upload-Length: 100", "Content-Type: application/offset+octet-stream")
	wantStatus(t, resp, body, 201)
	e.id = resp.Header.Get("Location")[len(e.url+"/files/"):]
	resp, body = e.send(t, "POST", "/files/", bytes.NewReader(e.secret), tusHeader, stateToken,
		"Upload-Length: "+strconv.Itoa(len(e.secret)), "Content-Type: application/offset+octet-stream")
	wantStatus(t, resp, body, 201)
	e.done = resp.Header.Get("Location")[len(e.url+"/files/"):]
	resp, body = e.send(t, "POST", "/stream/talk.txt", bytes.NewReader(e.secret), stateToken)
	wantStatus(t, resp, body, 201)
	return e
}

// mustHide checks that GET and HEAD of every path answer 404 without the
// bytes, with and without the token.
func (e *stateEnv) mustHide(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		for _, auth := range []string{"", stateToken} {
			for _, m := range []string{"GET", "HEAD"} {
				resp, body := e.send(t, m, p, nil, auth)
				if resp.StatusCode != http.StatusNotFound || bytes.Contains(body, e.secret) {
					t.Errorf("%s %s (%q): %s with %d bytes, want 404 without the upload's bytes", m, p, auth, resp.Status, len(body))
				}
			}
		}
	}
}

// statePaths are the URLs of e's state below the root's directory dir.
func (e *stateEnv) statePaths(dir string) []string {
	return []string{
		dir + "/" + e.id + ".bin", dir + "/" + e.id + ".info",
		dir + "/" + e.done + ".bin", dir + "/" + e.done + ".info",
		dir + "/streams/talk.txt",
	}
}

// TestStateNotServed checks that the static origin never serves ferry's own
// state, however the uploads directory is reached from the root, while the
// upload URLs still answer behind the token.
func TestStateNotServed(t *testing.T) {
	run(t, func(t *testing.T, e0 *env) {
		t.Run("inside the root", func(t *testing.T) {
			e := newStateEnv(t, e0.h2c, func(root string) server.Config {
				return server.Config{Uploads: filepath.Join(root, "up")}
			})
			e.mustHide(t, e.statePaths("/up")...)
			if _, err := os.Stat(filepath.Join(e.uploads, e.id+".bin")); err != nil {
				t.Fatalf("the upload is not where the test looks: %v", err)
			}
			// Reached through a link inside the root, to the directory
			// or to one file in it.
			if err := os.Symlink("up", filepath.Join(e.root, "alias")); err != nil {
				t.Fatal(err)
			}
			e.write(t, "sub/ok.txt", []byte("ok"))
			if err := os.Symlink("../up/"+e.done+".bin", filepath.Join(e.root, "sub", "file")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../alias/streams", filepath.Join(e.root, "sub", "s")); err != nil {
				t.Fatal(err)
			}
			e.mustHide(t, e.statePaths("/alias")...)
			e.mustHide(t, "/sub/file", "/sub/s/talk.txt")

			// The uploads answer at their own URLs, behind the token.
			resp, body := e.send(t, "GET", "/files/"+e.done, nil)
			wantStatus(t, resp, body, http.StatusUnauthorized)
			resp, body = e.send(t, "GET", "/files/"+e.done, nil, stateToken)
			wantStatus(t, resp, body, http.StatusOK)
			mustEqualBytes(t, "the finished upload", body, e.secret)
			resp, body = e.send(t, "GET", "/stream/talk.txt", nil)
			wantStatus(t, resp, body, http.StatusUnauthorized)
			resp, body = e.send(t, "GET", "/sub/ok.txt", nil)
			wantStatus(t, resp, body, http.StatusOK)
		})
		t.Run("spelled another way", func(t *testing.T) {
			// Config.Uploads names the directory through a link outside
			// the root and a dot: only its identity says what it is.
			e := newStateEnv(t, e0.h2c, func(root string) server.Config {
				outside := filepath.Join(filepath.Dir(root), "elsewhere")
				if err := os.Symlink(root, outside); err != nil {
					t.Fatal(err)
				}
				return server.Config{Uploads: outside + "/./up/"}
			})
			e.mustHide(t, e.statePaths("/up")...)
		})
		t.Run("streams apart", func(t *testing.T) {
			e := newStateEnv(t, e0.h2c, func(root string) server.Config {
				return server.Config{Uploads: filepath.Join(filepath.Dir(root), "up"), Streams: filepath.Join(root, "up", "streams")}
			})
			e.mustHide(t, "/up/streams/talk.txt")
		})
		t.Run("hidden directories", func(t *testing.T) {
			e := newStateEnv(t, e0.h2c, func(root string) server.Config {
				state := filepath.Join(root, "state")
				if err := os.MkdirAll(state, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(state, "ferry.db"), []byte("PRIVATE upload bytes"), 0o600); err != nil {
					t.Fatal(err)
				}
				return server.Config{Uploads: filepath.Join(filepath.Dir(root), "up"), Hide: []string{state}}
			})
			e.mustHide(t, "/state/ferry.db")
		})
		t.Run("work files and dot files", func(t *testing.T) {
			e := newStateEnv(t, e0.h2c, func(root string) server.Config {
				return server.Config{Uploads: filepath.Join(filepath.Dir(root), "up")}
			})
			for _, name := range []string{"big.iso.part", "big.iso.ferry", ".big.iso.tmp123", ".git/config", ".env", "a/.ssh/id_ed25519", ".local/state/ferry/ferry.db"} {
				e.write(t, name, e.secret)
			}
			e.mustHide(t, "/big.iso.part", "/big.iso.ferry", "/.big.iso.tmp123", "/.git/config", "/.env", "/a/.ssh/id_ed25519", "/.local/state/ferry/ferry.db")
		})
		t.Run("dot files on request", func(t *testing.T) {
			e := newStateEnv(t, e0.h2c, func(root string) server.Config {
				return server.Config{Uploads: filepath.Join(root, ".up"), ServeDotFiles: true}
			})
			e.write(t, ".well-known/acme-challenge/tok", []byte("tok"))
			e.write(t, ".big.iso.tmp1", e.secret)
			resp, body := e.send(t, "GET", "/.well-known/acme-challenge/tok", nil)
			wantStatus(t, resp, body, http.StatusOK)
			e.mustHide(t, append(e.statePaths("/.up"), "/.big.iso.tmp1")...)
		})
	})
}

// TestRootInsideState refuses a root that is ferry's own state or inside it.
func TestRootInsideState(t *testing.T) {
	base := t.TempDir()
	up := filepath.Join(base, "up")
	if err := os.MkdirAll(filepath.Join(up, "streams", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{up, filepath.Join(up, "streams"), filepath.Join(up, "streams", "x")} {
		_, err := server.New(server.Config{Root: root, Uploads: up})
		var ce *server.ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, server.ErrRootInState) {
			t.Errorf("New with Root %s and Uploads %s = %v, want a *ConfigError for ErrRootInState", root, up, err)
		}
	}
}

// Deep paths and links that climb from deep inside are walked like any
// other: a file 200 directories down, reached directly and through a link
// that goes up 150 of them and down again.
func TestDeepPaths(t *testing.T) {
	e := newEnv(t, false, nil)
	deep := strings.Repeat("d/", 200)
	e.write(t, deep+"f.txt", []byte("deep"))
	e.write(t, strings.Repeat("d/", 50)+"g.txt", []byte("shallower"))
	link := filepath.Join(e.root, filepath.FromSlash(deep), "up")
	if err := os.Symlink(strings.Repeat("../", 150)+"g.txt", link); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"/" + deep + "f.txt": "deep", "/" + deep + "up": "shallower"} {
		resp, body := e.do(t, "GET", p)
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("GET %.40s...: %d %q, want %q", p, resp.StatusCode, body, want)
		}
	}
}
