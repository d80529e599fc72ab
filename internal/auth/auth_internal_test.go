package auth

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	got := ParseChallenges([]string{
		`Basic realm="files", Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
		`Digest realm="a \"quoted\" realm", nonce=abc`,
	})
	want := []Challenge{
		{"basic", map[string]string{"realm": "files"}},
		{"digest", map[string]string{"realm": "http-auth@example.org", "qop": "auth, auth-int", "algorithm": "SHA-256",
			"nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"}},
		{"digest", map[string]string{"realm": `a "quoted" realm`, "nonce": "abc"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := ParseChallenges([]string{`Basic realm="unterminated`}); len(got) != 1 || len(got[0].Params) != 0 {
		t.Errorf("an unterminated quote: %+v", got)
	}
}

// The example of RFC 7616 §3.9.1, with both algorithms.
func TestDigestRFC7616Example(t *testing.T) {
	newCnonce = func() string { return "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ" }
	defer func() { newCnonce = defaultCnonce }()
	cred := Credential{User: "Mufasa", Password: "Circle of Life"}
	for alg, want := range map[string]string{
		"MD5":     "8ca523f5e9506fed4657c9700eebdbec",
		"SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
	} {
		c := Challenge{Scheme: "digest", Params: map[string]string{
			"realm": "http-auth@example.org", "qop": "auth, auth-int", "algorithm": alg,
			"nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
		}}
		d, ok := newDigest(c, cred)
		if !ok {
			t.Fatalf("%s: not answered", alg)
		}
		v := d.authorization(http.MethodGet, "/dir/index.html")
		if !strings.Contains(v, `response="`+want+`"`) || !strings.Contains(v, "nc=00000001") || !strings.Contains(v, `opaque="FQhe`) {
			t.Errorf("%s: %s", alg, v)
		}
		if v2 := d.authorization(http.MethodGet, "/dir/index.html"); !strings.Contains(v2, "nc=00000002") {
			t.Errorf("%s: the nonce's second use: %s", alg, v2)
		}
	}
	if _, ok := newDigest(Challenge{Scheme: "digest", Params: map[string]string{"nonce": "n", "qop": "auth-int"}}, cred); ok {
		t.Error("a challenge that takes only auth-int was answered")
	}
	if _, ok := newDigest(Challenge{Scheme: "digest", Params: map[string]string{"nonce": "n", "algorithm": "SHA-512-256"}}, cred); ok {
		t.Error("an unknown algorithm was answered")
	}
}

func TestNetrc(t *testing.T) {
	n, err := ParseNetrc(strings.NewReader(`# logins
machine files.example.com login alice password "s3cret pass"
machine Files.Example.com login second password nope
macdef init
  cd /pub
  ls

machine other.example.com
  login bob
  password hunter2
  account ignored
default login anon password guest
`))
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]Credential{
		"files.example.com": {"alice", "s3cret pass"},
		"other.example.com": {"bob", "hunter2"},
		"elsewhere.org":     {"anon", "guest"},
	} {
		if got, ok := n.Lookup(host); !ok || got != want {
			t.Errorf("%s: %+v %v, want %+v", host, got, ok, want)
		}
	}
	for _, bad := range []string{"machine", "login x", "machine h login x pasword y", `machine "h`} {
		if _, err := ParseNetrc(strings.NewReader(bad)); err == nil {
			t.Errorf("%q was taken", bad)
		}
	}
}
