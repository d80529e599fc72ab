package download

import (
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/ferryhq/ferry/internal/sfv"
)

// reprDigest is a server's RFC 9530 Repr-Digest of the whole representation.
type reprDigest struct {
	alg string // "sha-256" or "sha-512"
	hex string
}

var digestSizes = map[string]int{"sha-256": 32, "sha-512": 64}

// wantDigest is the Want-Repr-Digest ferry sends (RFC 9530 §4): the digest
// it computes anyway first.
func (r *run) wantDigest() string {
	if c := r.j.Checksum; c != nil && c.Algorithm == "sha-512" {
		return "sha-512=10, sha-256=5"
	}
	return "sha-256=10, sha-512=5"
}

// parseReprDigest returns the first digest in Repr-Digest that ferry can
// check. A malformed field, or a digest of the wrong length, is ignored: it
// proves nothing either way.
func parseReprDigest(h http.Header) reprDigest {
	field := strings.Join(h.Values("Repr-Digest"), ", ")
	if field == "" {
		return reprDigest{}
	}
	members, err := sfv.ParseDictionary(field)
	if err != nil {
		return reprDigest{}
	}
	for _, m := range members {
		if n, ok := digestSizes[m.Key]; ok && m.Value.Kind == sfv.ByteSequence && len(m.Value.Bytes) == n {
			return reprDigest{m.Key, hex.EncodeToString(m.Value.Bytes)}
		}
	}
	return reprDigest{}
}
