package dialect

import (
	"net/http"
	"strings"
	"testing"
)

func TestHeaders(t *testing.T) {
	show := func(h http.Header) string {
		var b strings.Builder
		for _, k := range []string{"Tus-Resumable", "Upload-Draft-Interop-Version", "Upload-Length", "Upload-Defer-Length", "Upload-Offset", "Upload-Complete", "Content-Type"} {
			if v := h.Get(k); v != "" {
				b.WriteString(k + "=" + v + " ")
			}
		}
		return strings.TrimSpace(b.String())
	}
	for _, c := range []struct {
		name string
		got  http.Header
		want string
	}{
		{"tus create", Tus.Create(10, false), "Tus-Resumable=1.0.0 Upload-Length=10"},
		{"tus deferred create", Tus.Create(-1, false), "Tus-Resumable=1.0.0 Upload-Defer-Length=1"},
		{"tus append", Tus.Append(5, true), "Tus-Resumable=1.0.0 Upload-Offset=5 Content-Type=application/offset+octet-stream"},
		{"draft create", IETF6.Create(10, false), "Upload-Draft-Interop-Version=6 Upload-Length=10 Upload-Complete=?0"},
		{"draft stream create", IETF8.Create(-1, true), "Upload-Draft-Interop-Version=8 Upload-Complete=?1"},
		{"draft append", IETF8.Append(7, false), "Upload-Draft-Interop-Version=8 Upload-Offset=7 Upload-Complete=?0 Content-Type=application/partial-upload"},
	} {
		if got := show(c.got); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestOffset(t *testing.T) {
	for _, c := range []struct {
		off, complete string
		d             Dialect
		want          int64
		done, ok      bool
	}{
		{"0", "", Tus, 0, false, true},
		{"9223372036854775807", "", Tus, 1<<63 - 1, false, true},
		{"12", "?1", IETF8, 12, true, true},
		{"12", "?1", Tus, 12, false, true}, // tus has no such field
		{"", "", IETF8, 0, false, false},
		{"-1", "", IETF8, 0, false, false},
		{"+5", "", Tus, 0, false, false},
		{" 7", "", Tus, 0, false, false},
		{"9223372036854775808", "", Tus, 0, false, false},
		{"1e3", "", Tus, 0, false, false},
	} {
		h := http.Header{"Upload-Offset": {c.off}, "Upload-Complete": {c.complete}}
		off, done, err := c.d.Offset(h)
		if (err == nil) != c.ok || off != c.want || done != c.done {
			t.Errorf("%+v: %d %v %v", c, off, done, err)
		}
	}
}

func FuzzOffset(f *testing.F) {
	for _, s := range []string{"0", "5", "-1", "010", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if off, _, err := IETF8.Offset(http.Header{"Upload-Offset": {s}}); err == nil && off < 0 {
			t.Fatalf("%q read as %d", s, off)
		}
	})
}
