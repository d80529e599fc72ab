package transfer

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://a.example/x", "https://a.example:443/y?q", true},
		{"http://a.example/x", "HTTP://A.EXAMPLE:80/y", true},
		{"http://[::1]:80/x", "http://[::1]/x", true},
		{"https://a.example/x", "http://a.example/x", false}, // a downgrade
		{"http://a.example/x", "https://a.example/x", false},
		{"https://a.example/x", "https://a.example:8443/x", false},
		{"https://a.example/x", "https://sub.a.example/x", false}, // net/http would keep them
		{"https://sub.a.example/x", "https://a.example/x", false},
		{"http://127.0.0.1:1/x", "http://127.0.0.1:2/x", false},
		{"http://127.0.0.1/x", "http://localhost/x", false},
	} {
		a, _ := url.Parse(tc.a)
		b, _ := url.Parse(tc.b)
		if got := SameOrigin(a, b); got != tc.same {
			t.Errorf("SameOrigin(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

func TestIsCredential(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "Cookie2": true,
		"X-Auth-Token": true, "X-Api-Key": true, "Private-Token": true, "X-Amz-Security-Token": true,
		"Ocp-Apim-Subscription-Key": true, "X-Session-Id": true, "X_Secret": true, "apikey": true,
		"X-Authenticated-User": true, "X-Goog-Api-Key": true, "X-Signature": true,
		"X-Trace": false, "User-Agent": false, "Accept": false, "Range": false, "Upload-Offset": false,
		"Tus-Resumable": false, "Upload-Metadata": false, "Want-Repr-Digest": false, "Content-Type": false,
		"X-Monkey": false, "Keyboard": false,
	} {
		if got := IsCredential(name); got != want {
			t.Errorf("IsCredential(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestAddHeader(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer x"}, "X-Trace": {"1"}}
	for target, creds := range map[string]bool{
		"https://a.example/other/path": true,
		"https://cdn.example/x":        false,
		"http://a.example/x":           false,
		"https://a.example:8443/x":     false,
	} {
		req, _ := http.NewRequest("GET", target, nil)
		AddHeader(req, h, "https://a.example/start")
		if got := req.Header.Get("Authorization") != ""; got != creds {
			t.Errorf("to %s: Authorization sent %v, want %v", target, got, creds)
		}
		if req.Header.Get("X-Trace") == "" {
			t.Errorf("to %s: X-Trace left out", target)
		}
	}
}

// A chain that left the first request's origin never gets the credentials
// back, even when it returns there.
func TestRedirectDropsCredentialsForGood(t *testing.T) {
	mk := func(u string) *http.Request {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "Bearer x")
		req.Header.Set("X-Trace", "1")
		return req
	}
	for _, tc := range []struct {
		chain []string
		creds bool
	}{
		{[]string{"https://a.example/1", "https://a.example/2"}, true},
		{[]string{"https://a.example/1", "https://b.example/2"}, false},
		{[]string{"https://a.example/1", "http://a.example/2"}, false},
		{[]string{"https://a.example/1", "https://b.example/2", "https://a.example/3"}, false},
	} {
		var via []*http.Request
		for _, u := range tc.chain[:len(tc.chain)-1] {
			via = append(via, mk(u))
		}
		req := mk(tc.chain[len(tc.chain)-1])
		if err := CheckRedirect(req, via); err != nil {
			t.Fatalf("%v: %v", tc.chain, err)
		}
		if got := req.Header.Get("Authorization") != ""; got != tc.creds {
			t.Errorf("%v: Authorization kept %v, want %v", tc.chain, got, tc.creds)
		}
		if req.Header.Get("X-Trace") == "" {
			t.Errorf("%v: X-Trace dropped", tc.chain)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://a.example/x":            true,
		"http://127.0.0.1:8080/x":        true,
		"file:///etc/passwd":             false,
		"ftp://a.example/x":              false,
		"gopher://a.example/x":           false,
		"javascript:alert(1)":            false,
		"http:///no-host":                false,
		"https://:443/x":                 false,
		"https://user:pass@evil.example": false,
		"https://a.example@evil.example": false,
	} {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckTarget(p, nil)
		if (err == nil) != ok || err != nil && !errors.Is(err, ErrUnsafeURL) {
			t.Errorf("CheckTarget(%s) = %v, want ok %v", u, err, ok)
		}
	}
	// The credentials of the URL a reference resolves against, at its
	// origin, are the user's; any other are the server's.
	base, _ := url.Parse("https://me:pw@a.example/dir/x")
	for ref, ok := range map[string]bool{
		"y":                                true,
		"/other":                           true,
		"https://me:pw@a.example/z":        true,
		"https://a.example/z":              true,
		"https://you:pw@a.example/z":       false,
		"https://me:pw@evil.example/z":     false,
		"http://me:pw@a.example/z":         false,
		"//me:pw@a.example:8443/z":         false,
		"https://me:other@a.example/z":     false,
		"https://evil.example/no-userinfo": true,
	} {
		r, _ := url.Parse(ref)
		if err := CheckTarget(base.ResolveReference(r), base); (err == nil) != ok {
			t.Errorf("CheckTarget(%s against %s) = %v, want ok %v", ref, base.Redacted(), err, ok)
		}
	}
}
