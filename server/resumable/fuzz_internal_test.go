package resumable

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/dialect"
	"github.com/ferryhq/ferry/internal/sfv"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/memstore"
)

// request returns a request with the given header fields, a value each;
// an empty value leaves the field out.
func request(method string, fields ...string) *http.Request {
	r := &http.Request{Method: method, Header: http.Header{}, Host: "ferry.example"}
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] != "" {
			r.Header.Add(fields[i], fields[i+1])
		}
	}
	return r
}

// FuzzTusHeaders checks the parsers of tus's numeric and checksum fields:
// they never panic, and what they accept is what the protocol allows.
func FuzzTusHeaders(f *testing.F) {
	for _, s := range [][4]string{
		{"0", "100", "1", "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="},
		{"42", "999999999999999999", "", "md5 XrY7u+Ae7tCTyyK7j1rNww=="},
		{"-1", "1e3", "2", "sha256"},
		{"007", " 5", "1 ", "crc32 AAAA"},
		{"9223372036854775807", "", "", "sha512 " + strings.Repeat("A", 88)},
		{"", "+5", "", "sha1  Kq5sNclPz7QV2+lfQIuc6R7oRu0= "},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, offset, length, deferLength, checksum string) {
		for _, v := range []string{offset, length, deferLength} {
			n, ok := dialect.ParseDecimal(v)
			if !ok {
				continue
			}
			want, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n != want || n < 0 || strings.TrimLeft(v, "0123456789") != "" {
				t.Fatalf("dialect.ParseDecimal(%q) = %d, accepted; want only digits", v, n)
			}
		}
		r := request("PATCH", "Tus-Resumable", "1.0.0", "Upload-Offset", offset, "Upload-Length", length,
			"Upload-Defer-Length", deferLength, "Upload-Checksum", checksum)
		d, e := detect(r)
		if e != nil || d.IETF() {
			t.Fatalf("detect of a tus request = %v, %v", d, e)
		}
		if n, ok := d.RequestOffset(r); ok && (n < 0 || dialect.Field(r, "Upload-Offset") != offset) {
			t.Fatalf("offset %q = %d", offset, n)
		}
		v, e := chunkVerifier(r)
		if e == nil && v != nil {
			for _, w := range v.wants {
				if len(w.sum) != w.h.Size() {
					t.Fatalf("Upload-Checksum %q: a %d-byte sum for a %d-byte hash", checksum, len(w.sum), w.h.Size())
				}
			}
		}
		if e == nil && v == nil && strings.TrimSpace(checksum) != "" {
			t.Fatalf("Upload-Checksum %q accepted and ignored", checksum)
		}
	})
}

// FuzzDraftHeaders checks the draft's fields: Upload-Complete (interop 3:
// Upload-Incomplete), Upload-Offset, Upload-Length and the interop
// version. Accepted values are structured fields of the right type and
// range.
func FuzzDraftHeaders(f *testing.F) {
	for _, s := range [][5]string{
		{"8", "?1", "0", "100", "application/partial-upload"},
		{"3", "?0", "42", "", ""},
		{"6", "yes", "1.5", "-1", "application/offset+octet-stream"},
		{"", "?1;x=1", "999999999999999", "1000000000000000", ""},
		{"99", "?", " 7 ", "7, 8", ""},
		{"5", "?1, ?0", "0x10", "\"5\"", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	f.Fuzz(func(t *testing.T, version, complete, offset, length, contentType string) {
		r := request("PATCH", "Upload-Draft-Interop-Version", version, "Upload-Complete", complete,
			"Upload-Incomplete", complete, "Upload-Offset", offset, "Upload-Length", length, "Content-Type", contentType)
		d, e := detect(r)
		if e != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(version)); err == nil && n >= dialect.Interop3 && n <= LatestInterop {
				t.Fatalf("interop version %q refused", version)
			}
			return
		}
		if !d.IETF() {
			if complete != "" || version != "" || dialect.MediaType(contentType) == dialect.PartialUpload {
				t.Fatalf("a request with draft fields was taken for tus: %v", r.Header)
			}
			return
		}
		if n, ok := d.RequestOffset(r); ok && (n < 0 || n > sfv.MaxInteger) {
			t.Fatalf("Upload-Offset %q = %d", offset, n)
		}
		if n, ok := dialect.RequestLength(r); ok && (n < 0 || n > sfv.MaxInteger) {
			t.Fatalf("Upload-Length %q = %d", length, n)
		}
		c, ok := d.RequestComplete(r)
		if !ok && complete == "" {
			t.Fatal("an absent completeness field was refused")
		}
		if ok && complete != "" {
			b, err := sfv.ParseBoolean(complete)
			if err != nil || (d.Interop == dialect.Interop3) == (b == c) {
				t.Fatalf("interop %d: completeness %q read as %v", d.Interop, complete, c)
			}
		}
	})
}

// FuzzUploadConcat checks Upload-Concat: a final upload names between one
// and MaxPartials distinct uploads of this handler, each once.
func FuzzUploadConcat(f *testing.F) {
	id, other := store.NewID(), store.NewID()
	for _, s := range []string{
		"partial",
		"final;/files/" + id + " /files/" + other,
		"final;http://ferry.example/files/" + id,
		"final;https://FERRY.example:443/files/" + id,
		"final;http://elsewhere.example/files/" + id,
		"final;/files/" + id + " /files/" + id,
		"final; /files/" + id + "?x=1",
		"final;",
		"final;/files/../files/" + id,
		"final;%2ffiles%2f" + id,
		"final;/files/" + strings.ToUpper(id),
	} {
		f.Add(s)
	}
	h, err := New(Config{Store: memstore.New(), MaxPartials: 3, Expiry: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { h.Close() })
	f.Fuzz(func(t *testing.T, v string) {
		spec, e := h.parseConcat(request("POST", "Upload-Concat", v))
		if e != nil {
			return
		}
		switch {
		case spec.partial:
			if spec.final || len(spec.ids) != 0 || strings.TrimSpace(v) != "partial" {
				t.Fatalf("%q: %+v", v, spec)
			}
		case spec.final:
			if len(spec.ids) == 0 || len(spec.ids) > 3 {
				t.Fatalf("%q names %d partial uploads", v, len(spec.ids))
			}
			seen := map[string]bool{}
			for _, id := range spec.ids {
				if !store.ValidID(id) || seen[id] {
					t.Fatalf("%q: partial upload %q is invalid or repeated", v, id)
				}
				seen[id] = true
			}
		default:
			if strings.TrimSpace(v) != "" {
				t.Fatalf("%q accepted as no concatenation", v)
			}
		}
	})
}
