package dialect

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func request(method string, kv ...string) *http.Request {
	r := httptest.NewRequest(method, "/files/x", nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		name string
		r    *http.Request
		want Dialect
		ok   bool
	}{
		{"interop version", request("POST", "Upload-Draft-Interop-Version", "5", "Tus-Resumable", "1.0.0"), Dialect{5}, true},
		{"unknown version", request("POST", "Upload-Draft-Interop-Version", "9"), Dialect{}, false},
		{"no number", request("POST", "Upload-Draft-Interop-Version", "x"), Dialect{}, false},
		{"tus", request("POST", "Tus-Resumable", "1.0.0", "Upload-Complete", "?1"), Tus, true},
		{"draft fields only", request("POST", "Upload-Complete", "?0"), Dialect{Latest}, true},
		{"partial-upload PATCH", request("PATCH", "Content-Type", "Application/Partial-Upload; x=1"), Dialect{Latest}, true},
		{"nothing", request("POST"), Tus, true},
	} {
		if got, ok := Detect(c.r); got != c.want || ok != c.ok {
			t.Errorf("%s: Detect = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// Interop 3 says the inverse, in Upload-Incomplete; every other version
// says Upload-Complete. What a client sets, a server reads back, and so
// does a client reading an answer.
func TestCompleteRoundTrip(t *testing.T) {
	for _, d := range []Dialect{{Interop3}, {Interop4}, IETF6, IETF8} {
		for _, complete := range []bool{false, true} {
			r := request("PATCH")
			d.SetComplete(r.Header, complete)
			if !d.HasComplete(r) {
				t.Errorf("interop %d: HasComplete false after SetComplete", d.Interop)
			}
			if got, ok := d.RequestComplete(r); !ok || got != complete {
				t.Errorf("interop %d: RequestComplete = %v, %v; want %v (header %v)", d.Interop, got, ok, complete, r.Header)
			}
			h := http.Header{"Upload-Offset": {"5"}}
			d.SetComplete(h, complete)
			if _, got, err := d.Offset(h); err != nil || got != complete {
				t.Errorf("interop %d: Offset reads complete %v, %v; want %v", d.Interop, got, err, complete)
			}
		}
	}
	if h := (Dialect{Interop3}).Append(0, true); h.Get("Upload-Incomplete") != "?0" || h.Get("Upload-Complete") != "" {
		t.Errorf("interop 3 append: %v", h)
	}
	if _, ok := IETF8.RequestComplete(request("PATCH", "Upload-Complete", "1")); ok {
		t.Error("a completeness field that is no Boolean was accepted")
	}
	if got, ok := IETF8.RequestComplete(request("PATCH")); got || !ok {
		t.Errorf("absent completeness field: %v, %v; want incomplete", got, ok)
	}
}

func TestRequestFields(t *testing.T) {
	if n, ok := Tus.RequestOffset(request("PATCH", "Upload-Offset", "12")); n != 12 || !ok {
		t.Errorf("tus offset %d, %v", n, ok)
	}
	if _, ok := Tus.RequestOffset(request("PATCH", "Upload-Offset", "+12")); ok {
		t.Error("tus offset with a sign accepted")
	}
	if _, ok := IETF8.RequestOffset(request("PATCH", "Upload-Offset", "-1")); ok {
		t.Error("negative draft offset accepted")
	}
	if _, ok := IETF8.RequestOffset(request("PATCH", "Upload-Offset", "1", "Upload-Offset", "2")); ok {
		t.Error("an offset sent twice was read as its first line")
	}
	if n, ok := RequestLength(request("POST", "Upload-Length", "40")); n != 40 || !ok {
		t.Errorf("length %d, %v", n, ok)
	}
	if _, ok := RequestLength(request("POST", "Upload-Length", "4.0")); ok {
		t.Error("a length that is no Integer was read")
	}
}
