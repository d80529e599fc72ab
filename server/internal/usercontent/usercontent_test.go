package usercontent

import (
	"mime"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPresentation(t *testing.T) {
	for _, c := range []struct {
		in     string
		out    string
		inline bool
	}{
		{"audio/wav", "audio/wav", true},
		{"video/mp4; codecs=avc1", "video/mp4", true},
		{"IMAGE/PNG", "image/png", true},
		{"image/svg+xml", Opaque, false},
		{"image/svg", Opaque, false},
		{"image/vnd.foo+xml", Opaque, false},
		{"text/plain", "text/plain; charset=utf-8", true},
		{"text/plain; charset=ISO-8859-1", "text/plain; charset=iso-8859-1", true},
		{`text/plain; charset="a b"`, "text/plain; charset=utf-8", true},
		{"text/html", Opaque, false},
		{"text/javascript", Opaque, false},
		{"application/xhtml+xml", Opaque, false},
		{"application/pdf", Opaque, false},
		{"application/octet-stream", Opaque, false},
		{"multipart/x-mixed-replace; boundary=x", Opaque, false},
		{"", Opaque, false},
		{"garbage", Opaque, false},
		{"text/plain\r\nSet-Cookie: a=b", Opaque, false},
	} {
		out, inline := Presentation(c.in)
		if out != c.out || inline != c.inline {
			t.Errorf("Presentation(%q) = %q, %v; want %q, %v", c.in, out, inline, c.out, c.inline)
		}
	}
}

func TestDisposition(t *testing.T) {
	for _, c := range []struct{ kind, name, want string }{
		{"attachment", "report.pdf", "attachment; filename=report.pdf"},
		{"inline", "a b.txt", `inline; filename="a b.txt"`},
		{"attachment", "", "attachment"},
		{"attachment", "\r\n", "attachment"},
		{"attachment", `say "hi"\.txt`, `attachment; filename="say _hi__.txt"`},
		{"attachment", "x\r\nSet-Cookie: a=b", `attachment; filename="xSet-Cookie: a=b"`},
		{"attachment", "été.txt", "attachment; filename=_t_.txt; filename*=UTF-8''%C3%A9t%C3%A9.txt"},
		{"attachment", "evil\u202etxt.exe", "attachment; filename=eviltxt.exe"},
		{"attachment", "日本.mp4", "attachment; filename=__.mp4; filename*=UTF-8''%E6%97%A5%E6%9C%AC.mp4"},
		{"attachment", "50%'s.txt", `attachment; filename="50%'s.txt"`},
		{"attachment", "\xff.bin", "attachment; filename=_.bin"},
	} {
		if got := Disposition(c.kind, c.name); got != c.want {
			t.Errorf("Disposition(%q, %q) = %q, want %q", c.kind, c.name, got, c.want)
		}
	}
}

func TestSetHeaders(t *testing.T) {
	h := http.Header{}
	SetHeaders(h, "text/html", "x.html")
	for k, want := range map[string]string{
		"Content-Type":            Opaque,
		"Content-Disposition":     "attachment; filename=x.html",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "sandbox",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// FuzzDisposition checks that no name can break the field: the value has
// only printable ASCII, parses back as the kind with the parameters it
// says, and the name it offers is the cleaned name.
func FuzzDisposition(f *testing.F) {
	for _, s := range []string{"report.pdf", "a b", `"; filename=evil.html`, "x\r\ny", "été", "\u202e", "%00", "\\", "日本語.txt", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		v := Disposition("attachment", name)
		for i := 0; i < len(v); i++ {
			if v[i] < ' ' || v[i] >= 0x7f {
				t.Fatalf("Disposition(%q) = %q: byte %#x", name, v, v[i])
			}
		}
		kind, params, err := mime.ParseMediaType(v)
		if err != nil || kind != "attachment" {
			t.Fatalf("Disposition(%q) = %q: parses as %q, %v", name, v, kind, err)
		}
		want := clean(name)
		if want == "" {
			if len(params) != 0 {
				t.Fatalf("Disposition(%q) = %q: parameters for an empty name", name, v)
			}
			return
		}
		// mime.ParseMediaType prefers filename* and decodes it.
		if got := params["filename"]; got != want {
			t.Fatalf("Disposition(%q) = %q: offers %q, want %q", name, v, got, want)
		}
		if strings.ContainsAny(want, "\"\\\r\n") || !utf8.ValidString(want) {
			t.Fatalf("clean(%q) = %q: a quote, backslash, line end or invalid UTF-8 survived", name, want)
		}
	})
}
