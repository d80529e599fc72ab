//go:build interop

package interop

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

// nginx's auth_basic, with a user file the test makes: ferry answers its
// 401 with -u or --netrc-file, and fails without them.
func TestGetFromNginxBasicAuth(t *testing.T) {
	dir := t.TempDir()
	sum := sha1.Sum([]byte("wonderland"))
	users := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(users, []byte("alice:{SHA}"+base64.StdEncoding.EncodeToString(sum[:])+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ng := startNginx(t, nginxOptions{locations: []peer.Location{{Path: "/private/", BasicAuthUsers: users}}})
	path, want := fixture(t, "auth-8m.bin", 8*MiB)
	url := ng.URL + "/private/" + filepath.Base(path)

	out := filepath.Join(dir, "out")
	r := runCmd(t, time.Minute, ferryBin, "get", "-q", "-o", out, url)
	if r.exitCode == 0 || !strings.Contains(r.stderr, "401") {
		t.Errorf("without a login: %s", r)
	}
	unauthorized := func() (n int) {
		for _, l := range ng.AccessLog() {
			if strings.Contains(l, " 401 ") {
				n++
			}
		}
		return n
	}
	before := unauthorized()
	if r := runCmd(t, time.Minute, ferryBin, "get", "-q", "-x", "4", "-u", "alice:wonderland", "-o", out, url); r.exitCode != 0 {
		t.Fatalf("with -u: %s", r)
	}
	assertSameFile(t, out, 8*MiB, want)

	netrc := filepath.Join(dir, "netrc")
	os.WriteFile(netrc, []byte("machine 127.0.0.1 login alice password wonderland\n"), 0o600)
	out2 := filepath.Join(dir, "out2")
	if r := runCmd(t, time.Minute, ferryBin, "get", "-q", "--netrc-file", netrc, "-o", out2, url); r.exitCode != 0 {
		t.Fatalf("with --netrc-file: %s", r)
	}
	assertSameFile(t, out2, 8*MiB, want)
	// One 401 a run with a login: what answered it goes with the ranged
	// requests.
	if n := unauthorized() - before; n != 2 {
		t.Errorf("nginx answered 401 %d times in two runs with a login, want 2:\n%s", n, strings.Join(ng.AccessLog(), "\n"))
	}
}

// nginx's dav_methods PUT takes a plain upload.
func TestPutToNginxDAV(t *testing.T) {
	box := t.TempDir()
	os.Chmod(box, 0o777)
	ng := startNginx(t, nginxOptions{locations: []peer.Location{{Path: "/dav/", Alias: box, DAVPut: true}}})
	path, want := fixture(t, "dav-24m.bin", 24*MiB)
	r := runCmd(t, time.Minute, ferryBin, "put", "-q", "--protocol", "put", "--json", path, ng.URL+"/dav/up/file.bin")
	if r.exitCode != 0 {
		t.Fatalf("ferry put --protocol put: %s", r)
	}
	if !strings.Contains(r.stdout, `"protocol":"put"`) || !strings.Contains(r.stdout, `"sha256":"`+want+`"`) {
		t.Errorf("report: %s", r.stdout)
	}
	assertSameFile(t, filepath.Join(box, "up", "file.bin"), 24*MiB, want)
	if log := strings.Join(ng.AccessLog(), "\n"); !strings.Contains(log, `"PUT /dav/up/file.bin HTTP/1.1" 201`) {
		t.Errorf("nginx's access log:\n%s", log)
	}
}

// Apache httpd's mod_auth_digest: ferry answers its Digest challenge with
// -u, in one 401 a run.
func TestGetFromApacheDigest(t *testing.T) {
	bin := needPeer(t, "apache2")
	// The server's user (nobody) reads the files: a directory of its own.
	root, err := os.MkdirTemp("", "ferry-apache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	os.Chmod(root, 0o755)
	path, want := fixture(t, "digest-8m.bin", 8*MiB)
	copyPrefix(t, path, filepath.Join(root, "file.bin"), 8*MiB)
	os.Chmod(filepath.Join(root, "file.bin"), 0o644)
	ha1 := md5.Sum([]byte("alice:ferry:wonderland"))
	users := filepath.Join(root, "digest-users")
	os.WriteFile(users, []byte("alice:ferry:"+hex.EncodeToString(ha1[:])+"\n"), 0o644)

	srv, err := peer.StartApache(context.Background(), peer.ApacheConfig{Bin: bin, Root: root, DigestUsers: users})
	if err != nil {
		t.Fatalf("apache did not start: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("apache logs:\n%s", tail(srv.Logs(), 4000))
		}
		stopPeer(t, srv)
	})
	url := srv.URL + "/digest/file.bin"
	out := filepath.Join(t.TempDir(), "out")
	if r := runCmd(t, time.Minute, ferryBin, "get", "-q", "-o", out, url); r.exitCode == 0 || !strings.Contains(r.stderr, "401") {
		t.Errorf("without a login: %s", r)
	}
	if r := runCmd(t, time.Minute, ferryBin, "get", "-q", "-x", "4", "-u", "alice:wonderland", "-o", out, url); r.exitCode != 0 {
		t.Fatalf("with -u: %s", r)
	}
	assertSameFile(t, out, 8*MiB, want)
	if r := runCmd(t, time.Minute, ferryBin, "get", "-q", "-u", "alice:guess", "-o", out+"2", url); r.exitCode == 0 {
		t.Errorf("a wrong password was let in: %s", r)
	}
}
