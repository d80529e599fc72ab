//go:build interop

package interop

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cookieSite sets a session cookie and a domain cookie at /login, and
// serves /private only to a client that sends both back.
func cookieSite(t *testing.T) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: "s3cr3t", Path: "/", HttpOnly: true})
			http.SetCookie(w, &http.Cookie{Name: "lang", Value: "en", Path: "/", MaxAge: 3600})
			io.WriteString(w, "welcome\n")
			return
		}
		sid, err1 := r.Cookie("sid")
		lang, err2 := r.Cookie("lang")
		if err1 != nil || err2 != nil || sid.Value != "s3cr3t" || lang.Value != "en" {
			http.Error(w, "log in first", http.StatusForbidden)
			return
		}
		io.WriteString(w, "private data\n")
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// curl is the oracle for cookies.txt: a jar curl -c writes is read by
// ferry -b, and one ferry --cookie-jar writes is read by curl -b.
func TestCookieJarWithCurl(t *testing.T) {
	curl := needPeer(t, "curl")
	site := cookieSite(t)
	dir := t.TempDir()

	curlJar := filepath.Join(dir, "curl-jar.txt")
	if r := runCmd(t, time.Minute, curl, "-sS", "-f", "-c", curlJar, "-o", os.DevNull, site+"/login"); r.exitCode != 0 {
		t.Fatalf("curl login: %s", r)
	}
	out := filepath.Join(dir, "by-ferry")
	if r := runCmd(t, time.Minute, ferryBin, "get", "-q", "-b", curlJar, "-o", out, site+"/private"); r.exitCode != 0 {
		t.Fatalf("ferry with curl's jar: %s", r)
	}
	if b, _ := os.ReadFile(out); string(b) != "private data\n" {
		t.Errorf("ferry with curl's jar got %q", b)
	}

	ferryJar := filepath.Join(dir, "ferry-jar.txt")
	if r := runCmd(t, time.Minute, ferryBin, "get", "-q", "--cookie-jar", ferryJar, "-o", filepath.Join(dir, "w"), site+"/login"); r.exitCode != 0 {
		t.Fatalf("ferry login: %s", r)
	}
	r := runCmd(t, time.Minute, curl, "-sS", "-f", "-b", ferryJar, site+"/private")
	if r.exitCode != 0 || r.stdout != "private data\n" {
		t.Errorf("curl with ferry's jar: %s", r)
	}
	jar, _ := os.ReadFile(ferryJar)
	if !strings.Contains(string(jar), "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\ts3cr3t") {
		t.Errorf("ferry's jar:\n%s", jar)
	}
}
