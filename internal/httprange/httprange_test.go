package httprange

import (
	"errors"
	"net/http"
	"testing"
)

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in   string
		want ContentRange
		err  bool
	}{
		{in: "bytes 0-0/1", want: ContentRange{0, 0, 1}},
		{in: "bytes 100-199/1000", want: ContentRange{100, 199, 1000}},
		{in: "bytes 100-199/*", want: ContentRange{100, 199, -1}},
		{in: "bytes */1000", want: ContentRange{-1, -1, 1000}},
		{in: "BYTES 1-2/3", want: ContentRange{1, 2, 3}},
		{in: "  bytes  5-9/10 ", want: ContentRange{5, 9, 10}},
		{in: "bytes */*", err: true},
		{in: "bytes 5-4/10", err: true},
		{in: "bytes 0-10/10", err: true},
		{in: "bytes -1-5/10", err: true},
		{in: "bytes 1-5", err: true},
		{in: "items 1-5/10", err: true},
		{in: "bytes 1-5/1x", err: true},
		{in: "bytes +1-5/10", err: true},
		{in: "bytes 99999999999999999999-1/2", err: true},
		{in: "", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseContentRange(tt.in)
			if tt.err {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("ParseContentRange(%q) = %+v, %v; want ErrSyntax", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseContentRange(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestRange(t *testing.T) {
	if got := Range(10, -1); got != "bytes=10-" {
		t.Errorf("Range(10, -1) = %q", got)
	}
	if got := Range(0, 0); got != "bytes=0-0" {
		t.Errorf("Range(0, 0) = %q", got)
	}
}

func TestETag(t *testing.T) {
	for _, ok := range []string{`"abc"`, `W/"abc"`, `""`, `"a-b_c.1"`} {
		if _, err := ParseETag(ok); err != nil {
			t.Errorf("ParseETag(%q) = %v, want ok", ok, err)
		}
	}
	for _, bad := range []string{`abc`, `"abc`, `W/abc`, `"a"b"`, `"a b"`, `w/"a"`, ``} {
		if _, err := ParseETag(bad); err == nil {
			t.Errorf("ParseETag(%q) = ok, want error", bad)
		}
	}
	if !ETag(`"x"`).StrongMatch(`"x"`) {
		t.Error(`"x" should strongly match "x"`)
	}
	for _, pair := range [][2]ETag{{`W/"x"`, `W/"x"`}, {`"x"`, `W/"x"`}, {`"x"`, `"y"`}, {``, ``}} {
		if pair[0].StrongMatch(pair[1]) {
			t.Errorf("%s strongly matches %s, want no", pair[0], pair[1])
		}
	}
}

func TestValidator(t *testing.T) {
	const lm = "Mon, 02 Jan 2006 15:04:05 GMT"
	const later = "Mon, 02 Jan 2006 15:04:07 GMT"
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name    string
		h       http.Header
		ifRange string
	}{
		{"strong etag wins", hdr("ETag", `"v1"`, "Last-Modified", lm, "Date", later), `"v1"`},
		{"weak etag: no If-Range at all, not even the date", hdr("ETag", `W/"v1"`, "Last-Modified", lm, "Date", later), ""},
		{"strong date alone", hdr("Last-Modified", lm, "Date", later), lm},
		{"date too close to Date is weak", hdr("Last-Modified", lm, "Date", lm), ""},
		{"no Date header: date is weak", hdr("Last-Modified", lm), ""},
		{"malformed etag ignored", hdr("ETag", `v1`), ""},
		{"nothing", hdr(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := FromResponse(tt.h)
			if got := v.IfRange(); got != tt.ifRange {
				t.Errorf("IfRange() = %q, want %q", got, tt.ifRange)
			}
		})
	}

	same := []struct {
		name string
		a, b Validator
		want bool
	}{
		{"same strong", Validator{ETag: `"a"`}, Validator{ETag: `"a"`}, true},
		{"different strong", Validator{ETag: `"a"`}, Validator{ETag: `"b"`}, false},
		{"strong vs none", Validator{ETag: `"a"`}, Validator{}, false},
		{"same date", Validator{LastModified: lm}, Validator{LastModified: lm}, true},
		{"different date", Validator{LastModified: lm}, Validator{LastModified: later}, false},
		{"weak tags and same date", Validator{ETag: `W/"a"`, LastModified: lm}, Validator{ETag: `W/"a"`, LastModified: lm}, true},
		{"weak tags differ", Validator{ETag: `W/"a"`, LastModified: lm}, Validator{ETag: `W/"b"`, LastModified: lm}, false},
		{"nothing to compare", Validator{}, Validator{}, false},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Same(tt.b); got != tt.want {
				t.Errorf("%+v.Same(%+v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

// FuzzContentRange checks that whatever parses formats back to itself and
// describes a sane range.
func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-0/1", "bytes 100-199/*", "bytes */1000", "bytes 5-4/10", "bytes 1-2/3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := ParseContentRange(s)
		if err != nil {
			return
		}
		if cr.First >= 0 && (cr.Last < cr.First || (cr.Size >= 0 && cr.Last >= cr.Size)) {
			t.Fatalf("ParseContentRange(%q) = %+v: invalid range accepted", s, cr)
		}
		again, err := ParseContentRange(cr.String())
		if err != nil || again != cr {
			t.Fatalf("round trip of %q: %q -> %+v, %v", s, cr.String(), again, err)
		}
	})
}

func FuzzETag(f *testing.F) {
	for _, s := range []string{`"abc"`, `W/"x"`, `""`, `abc`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseETag(s)
		if err != nil {
			return
		}
		if e.StrongMatch(e) == e.Weak() {
			t.Fatalf("%q: a tag must strongly match itself exactly when it is strong", s)
		}
	})
}
