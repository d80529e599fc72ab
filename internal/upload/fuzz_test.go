package upload

import (
	"math"
	"net/http"
	"net/url"
	"testing"

	"github.com/ferryhq/ferry/internal/dialect"
	"github.com/ferryhq/ferry/internal/transfer"
)

// FuzzServerAnswers feeds what a tus or IETF server answers to the
// client's readers: a Location is only ever taken as an http(s) URL the
// client may follow, an offset is never negative, an acknowledged offset
// never leaves the append it acknowledges, and the capabilities of OPTIONS
// never panic.
func FuzzServerAnswers(f *testing.F) {
	for _, loc := range []string{"/files/abc", "abc", "https://storage.example/files/x", "file:///etc/passwd",
		"http://user:pw@evil.example/x", "//evil.example/x", "https://a.example@evil.example/", "javascript:alert(1)",
		"http:///x", "%zz", "", " /files/x", "\x00"} {
		f.Add(loc, "0", int64(0), int64(10), "creation,concatenation", "1000", "sha256,sha1")
	}
	for _, off := range []string{"5", "+5", "-1", " 7", "010", "9223372036854775807", "9223372036854775808", "99999999999999999999", "1e3", "0x10", "11"} {
		f.Add("/files/x", off, int64(5), int64(5), "", "-1", "")
	}
	f.Fuzz(func(t *testing.T, loc, offset string, off, n int64, ext, maxSize, sums string) {
		base, _ := url.Parse("https://api.example/files/")
		if got, err := resolve(base, loc); err == nil {
			u, perr := url.Parse(got)
			if perr != nil || transfer.CheckTarget(u, base) != nil {
				t.Fatalf("Location %q taken as %q", loc, got)
			}
		}
		h := http.Header{"Upload-Offset": {offset}, "Tus-Extension": {ext}, "Tus-Max-Size": {maxSize}, "Tus-Checksum-Algorithm": {sums}}
		if v, _, err := dialect.Tus.Offset(h); err == nil && v < 0 {
			t.Fatalf("Upload-Offset %q read as %d", offset, v)
		}
		if off >= 0 && n >= 0 && off <= math.MaxInt64-n {
			if v, err := ackedOffset(h, off, n); err == nil && (v < off || v > off+n) {
				t.Fatalf("Upload-Offset %q acknowledged as %d for %d bytes at %d", offset, v, n, off)
			}
		}
		c := parseCaps(h)
		for e := range c.extensions {
			if e == "" {
				t.Fatal("an empty extension")
			}
		}
	})
}
