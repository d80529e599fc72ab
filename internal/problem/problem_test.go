package problem

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestWrite(t *testing.T) {
	d := Details{
		Type: "urn:x", Title: "bad offset", Status: http.StatusConflict, Code: "offset",
		Extra: map[string]any{"expected-offset": 5, "status": 999},
	}
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest("PATCH", "/u", nil), d)
	if w.Code != http.StatusConflict {
		t.Fatalf("status %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		t.Fatalf("Content-Length %q for %d bytes", cl, w.Body.Len())
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "urn:x", "title": "bad offset", "status": 409.0, "code": "offset", "expected-offset": 5.0}
	if len(got) != len(want) {
		t.Fatalf("members %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v; want %v", k, got[k], v)
		}
	}
}

func TestWriteHead(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Content-Length", "10")
	Write(w, httptest.NewRequest("HEAD", "/u", nil), Details{Title: "gone", Status: http.StatusNotFound})
	if w.Code != http.StatusNotFound || w.Body.Len() != 0 || w.Header().Get("Content-Length") != "" {
		t.Fatalf("HEAD: status %d, body %q, Content-Length %q", w.Code, w.Body, w.Header().Get("Content-Length"))
	}
}
