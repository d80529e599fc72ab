package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// Credential is a user name and password.
type Credential struct{ User, Password string }

// basic is RFC 7617's Authorization value.
func basic(c Credential) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.User+":"+c.Password))
}

// digest is one Digest challenge answered with a credential (RFC 7616):
// its nonce is used again, with the count going up, for the requests that
// follow until the server says it is stale.
type digest struct {
	cred                      Credential
	realm, nonce, opaque, qop string
	algorithm                 string // as the server named it: "MD5", "SHA-256", "MD5-sess", "SHA-256-sess"
	hash                      func() hash.Hash
	sess, userhash            bool

	mu sync.Mutex
	nc int
}

// digestAlgorithms are the algorithms answered, strongest first.
var digestAlgorithms = []string{"SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS"}

// newDigest answers c, or reports false for a challenge it cannot answer:
// an unknown algorithm, or a qop other than auth (auth-int would need the
// body hashed before it is sent).
func newDigest(c Challenge, cred Credential) (*digest, bool) {
	alg := c.Params["algorithm"]
	if alg == "" {
		alg = "MD5"
	}
	d := &digest{cred: cred, realm: c.Params["realm"], nonce: c.Params["nonce"], opaque: c.Params["opaque"], algorithm: alg}
	switch strings.ToUpper(alg) {
	case "SHA-256", "SHA-256-SESS":
		d.hash = sha256.New
	case "MD5", "MD5-SESS":
		d.hash = md5.New
	default:
		return nil, false
	}
	d.sess = strings.HasSuffix(strings.ToUpper(alg), "-SESS")
	d.userhash = strings.EqualFold(c.Params["userhash"], "true")
	if q, ok := c.Params["qop"]; ok {
		for _, v := range strings.Split(q, ",") {
			if strings.EqualFold(strings.TrimSpace(v), "auth") {
				d.qop = "auth"
			}
		}
		if d.qop == "" {
			return nil, false
		}
	}
	if d.nonce == "" {
		return nil, false
	}
	return d, true
}

func (d *digest) h(parts ...string) string {
	x := d.hash()
	x.Write([]byte(strings.Join(parts, ":")))
	return hex.EncodeToString(x.Sum(nil))
}

// authorization is the Authorization value for a request of method to
// uri (its request-target).
func (d *digest) authorization(method, uri string) string {
	d.mu.Lock()
	d.nc++
	nc := fmt.Sprintf("%08x", d.nc)
	d.mu.Unlock()
	cnonce := newCnonce()
	ha1 := d.h(d.cred.User, d.realm, d.cred.Password)
	if d.sess {
		ha1 = d.h(ha1, d.nonce, cnonce)
	}
	ha2 := d.h(method, uri)
	var response string
	if d.qop != "" {
		response = d.h(ha1, d.nonce, nc, cnonce, d.qop, ha2)
	} else {
		response = d.h(ha1, d.nonce, ha2)
	}
	user := d.cred.User
	if d.userhash {
		user = d.h(d.cred.User, d.realm)
	}
	var b2 strings.Builder
	fmt.Fprintf(&b2, `Digest username=%s, realm=%s, nonce=%s, uri=%s, algorithm=%s, response=%s`,
		quote(user), quote(d.realm), quote(d.nonce), quote(uri), d.algorithm, quote(response))
	if d.opaque != "" {
		fmt.Fprintf(&b2, ", opaque=%s", quote(d.opaque))
	}
	if d.qop != "" {
		fmt.Fprintf(&b2, ", qop=%s, nc=%s, cnonce=%s", d.qop, nc, quote(cnonce))
	}
	if d.userhash {
		b2.WriteString(", userhash=true")
	}
	return b2.String()
}

// newCnonce makes a client nonce (a test sets its own).
var newCnonce = defaultCnonce

// defaultCnonce is 128 random bits.
func defaultCnonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// quote is s as a quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
