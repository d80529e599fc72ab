package resumable

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"io"
	"net/http"
	"strings"

	"github.com/ferryhq/ferry/internal/dialect"
	"github.com/ferryhq/ferry/internal/sfv"
)

// checksumAlgorithms are the tus Upload-Checksum algorithms, in the order
// Tus-Checksum-Algorithm lists them; sha1 is the one tus requires.
var checksumAlgorithms = []struct {
	name string
	new  func() hash.Hash
}{
	{"sha1", sha1.New},
	{"sha256", sha256.New},
	{"sha512", sha512.New},
	{"md5", md5.New},
}

// digestAlgorithms are the RFC 9530 algorithms checked in Content-Digest
// and Repr-Digest.
var digestAlgorithms = map[string]func() hash.Hash{
	"sha-256": sha256.New,
	"sha-512": sha512.New,
}

// want is one expected hash of some bytes.
type want struct {
	h   hash.Hash
	sum []byte
	err *Error // returned on a mismatch
}

// verifier hashes the bytes written through it and checks them against
// every expected hash once they are all in.
type verifier struct{ wants []want }

func (v *verifier) Write(p []byte) (int, error) {
	for _, w := range v.wants {
		w.h.Write(p)
	}
	return len(p), nil
}

// check returns the error of the first hash that does not match.
func (v *verifier) check() error {
	for _, w := range v.wants {
		if !bytes.Equal(w.h.Sum(nil), w.sum) {
			return w.err
		}
	}
	return nil
}

// reader returns src with every byte read also hashed.
func (v *verifier) reader(src io.Reader) io.Reader { return io.TeeReader(src, v) }

// chunkVerifier returns a verifier for the content of r from its tus
// Upload-Checksum and RFC 9530 Content-Digest fields, or nil when it has
// neither. A Content-Digest with no algorithm ferry knows is ignored, as
// RFC 9530 allows; a malformed field, or an Upload-Checksum algorithm
// outside the list, is an error.
func chunkVerifier(r *http.Request) (*verifier, *Error) {
	v := &verifier{}
	if field := dialect.Field(r, "Upload-Checksum"); field != "" {
		alg, enc, ok := strings.Cut(strings.TrimSpace(field), " ")
		if !ok {
			return nil, ErrInvalidChecksum.with("Upload-Checksum %q: want \"<algorithm> <base64>\"", field)
		}
		var newHash func() hash.Hash
		for _, a := range checksumAlgorithms {
			if a.name == alg {
				newHash = a.new
			}
		}
		if newHash == nil {
			return nil, ErrInvalidChecksum.with("Upload-Checksum algorithm %q is not one of %s", alg, checksumNames())
		}
		sum, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err != nil || len(sum) != newHash().Size() {
			return nil, ErrInvalidChecksum.with("Upload-Checksum %q: not a Base64 %s sum", field, alg)
		}
		v.wants = append(v.wants, want{newHash(), sum, ErrChecksumMismatch})
	}
	if fields := r.Header.Values("Content-Digest"); len(fields) > 0 {
		members, err := sfv.ParseDictionary(strings.Join(fields, ", "))
		if err != nil {
			return nil, ErrInvalidChecksum.with("Content-Digest is not a structured-field dictionary")
		}
		mismatch := ErrDigestMismatch
		if r.Header.Get("Upload-Draft-Interop-Version") == "" && r.Header.Get("Tus-Resumable") != "" {
			mismatch = ErrChecksumMismatch
		}
		for _, m := range members {
			newHash, ok := digestAlgorithms[m.Key]
			if !ok {
				continue
			}
			if m.Value.Kind != sfv.ByteSequence || len(m.Value.Bytes) != newHash().Size() {
				return nil, ErrInvalidChecksum.with("Content-Digest %s is not a %d-byte sequence", m.Key, newHash().Size())
			}
			v.wants = append(v.wants, want{newHash(), m.Value.Bytes, mismatch})
		}
	}
	if len(v.wants) == 0 {
		return nil, nil
	}
	return v, nil
}

func checksumNames() string {
	names := make([]string, len(checksumAlgorithms))
	for i, a := range checksumAlgorithms {
		names[i] = a.name
	}
	return strings.Join(names, ",")
}

// parseReprDigest validates a Repr-Digest field and returns it normalised
// to the members ferry can check, or "" when there are none.
func parseReprDigest(fields []string) (string, *Error) {
	if len(fields) == 0 {
		return "", nil
	}
	members, err := sfv.ParseDictionary(strings.Join(fields, ", "))
	if err != nil {
		return "", ErrInvalidDigest.with("Repr-Digest is not a structured-field dictionary")
	}
	var keep []sfv.Member
	for _, m := range members {
		newHash, ok := digestAlgorithms[m.Key]
		if !ok {
			continue
		}
		if m.Value.Kind != sfv.ByteSequence || len(m.Value.Bytes) != newHash().Size() {
			return "", ErrInvalidDigest.with("Repr-Digest %s is not a %d-byte sequence", m.Key, newHash().Size())
		}
		keep = append(keep, m)
	}
	s, _ := sfv.FormatDictionary(keep)
	return s, nil
}

// reprVerifier returns a verifier for a Repr-Digest kept by parseReprDigest.
func reprVerifier(field string) *verifier {
	members, err := sfv.ParseDictionary(field)
	if err != nil || len(members) == 0 {
		return nil
	}
	v := &verifier{}
	for _, m := range members {
		if newHash, ok := digestAlgorithms[m.Key]; ok && m.Value.Kind == sfv.ByteSequence {
			v.wants = append(v.wants, want{newHash(), m.Value.Bytes, ErrReprDigestMismatch})
		}
	}
	return v
}
