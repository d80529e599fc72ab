package stream_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/stream"
	"github.com/ferryhq/ferry/server/stream/audio"
)

// storedName is what may be left in a stream directory once its handler
// has closed: finished streams, each under a valid name.
var storedName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)

// FuzzStreamRequest sends one request of any method, path, query, header
// fields and content (read in pieces of any size) to a fresh handler with
// the audio processors ferry serve runs, and checks what the server parses
// of it: no panic, no server failure, every reply line one JSON object,
// nothing written outside the stream directory, a stream stored under its
// name only when it completed, with exactly the content sent, and the
// storage counting exactly what is stored once the handler has closed.
func FuzzStreamRequest(f *testing.F) {
	wav := []byte("RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\xff\xff\xff\xff\x01\x00\xff\x7f")
	for _, s := range []struct {
		method, target, complete, offset, after, version, ctype string
		body                                                    []byte
	}{
		{"POST", "/stream/rec.bin", "", "", "", "", "", []byte("hello")},
		{"POST", "/stream/talk.wav", "", "", "", "", "audio/wav", wav},
		{"POST", "/stream/talk.wav", "?0", "", "", "8", "", wav[:20]},
		{"POST", "/stream/raw?format=s16le&rate=1&channels=8", "?1", "", "", "3", "", []byte{1, 2, 3, 4, 5}},
		{"POST", "/stream/raw?format=s16le&rate=99999999999", "", "", "", "", "", []byte{1, 2}},
		{"PATCH", "/stream/x?upload=00000000000000000000000000000000", "?1", "0", "5", "", "application/partial-upload", []byte("x")},
		{"HEAD", "/stream/x?upload=zz", "", "", "", "", "", nil},
		{"DELETE", "/stream/x?upload=", "", "", "", "", "", nil},
		{"GET", "/stream/../etc/passwd", "", "", "", "", "", nil},
		{"POST", "/stream/.hidden", "", "", "", "", "", []byte("x")},
		{"POST", "/stream/a%2Fb", "maybe", "-1", "x", "-3", "", []byte("x")},
		{"POST", "/stream/" + strings.Repeat("a", 201), "", "", "", "", "", []byte("x")},
		{"GET", "/stream/rec.bin", "", "", "", "", "", nil},
		{"POST", "/stream/big.bin", "", "", "", "", "", bytes.Repeat([]byte("b"), 2000)},
		{"POST", "/stream/big.bin", "?1", "", "", "8", "", bytes.Repeat([]byte("b"), 2000)},
	} {
		f.Add(s.method, s.target, s.complete, s.offset, s.after, s.version, s.ctype, s.body, uint8(7))
	}
	f.Fuzz(func(t *testing.T, method, target, complete, offset, after, version, ctype string, body []byte, piece uint8) {
		if !validMethod(method) {
			return
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		dir := t.TempDir()
		sdir := filepath.Join(dir, "streams")
		meter := store.NewMeter(store.MeterConfig{Max: store.RecordBytes + 1<<10})
		h, err := stream.New(stream.Config{Dir: sdir, Processors: audio.FromRequest, MaxSize: 1 << 16, Storage: meter})
		if err != nil {
			t.Fatal(err)
		}
		var rd io.Reader = bytes.NewReader(body)
		if piece > 0 {
			rd = &pieces{r: rd, n: int(piece)}
		} else {
			rd = iotest.OneByteReader(rd)
		}
		r := httptest.NewRequest(http.MethodGet, "/", io.NopCloser(rd))
		r.Method, r.URL, r.RequestURI = method, u, u.RequestURI()
		for k, v := range map[string]string{
			"Upload-Complete":              complete,
			"Upload-Offset":                offset,
			stream.RepliesAfterHeader:      after,
			"Upload-Draft-Interop-Version": version,
			"Content-Type":                 ctype,
		} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		w := &finalStatus{ResponseRecorder: httptest.NewRecorder()}
		h.ServeHTTP(w, r)
		h.Close()

		if w.code >= 500 || w.code == 0 && w.Code >= 500 {
			t.Fatalf("%s %s: %d %q", method, target, w.code, w.Body)
		}
		if w.Header().Get("Content-Type") == "application/x-ndjson" {
			sc := bufio.NewScanner(bytes.NewReader(w.Body.Bytes()))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var v map[string]any
				if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
					t.Fatalf("%s %s: reply %q is not a JSON object: %v", method, target, sc.Bytes(), err)
				}
			}
		}
		// Only the stream directory was written to, and only finished
		// streams under valid names remain in it.
		if entries, _ := os.ReadDir(dir); len(entries) > 1 || len(entries) == 1 && entries[0].Name() != "streams" {
			t.Fatalf("%s %s: the handler wrote %v next to its directory", method, target, entries)
		}
		// The store of streams in progress is left empty.
		if left, _ := filepath.Glob(filepath.Join(sdir, ".part", "*")); len(left) > 0 {
			t.Fatalf("%s %s: left in the store of streams in progress: %v", method, target, left)
		}
		entries, _ := os.ReadDir(sdir)
		entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return e.Name() == ".part" && e.IsDir() })
		if want := int64(len(entries)) * (store.RecordBytes + int64(len(body))); meter.Used() != want {
			t.Fatalf("%s %s: the storage counts %d bytes for %d streams stored, want %d", method, target, meter.Used(), len(entries), want)
		}
		for _, e := range entries {
			if !storedName.MatchString(e.Name()) || !e.Type().IsRegular() {
				t.Fatalf("%s %s: %q left in the stream directory", method, target, e.Name())
			}
			got, _ := os.ReadFile(filepath.Join(sdir, e.Name()))
			if !bytes.Equal(got, body) {
				t.Fatalf("%s %s: stored %d bytes, sent %d", method, target, len(got), len(body))
			}
			if w.code != http.StatusCreated {
				t.Fatalf("%s %s: a stream was stored on %d", method, target, w.code)
			}
		}
	})
}

// validMethod keeps the methods net/http would accept on the wire.
func validMethod(m string) bool {
	return m != "" && !strings.ContainsFunc(m, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
	})
}

// finalStatus records the final status, after any interim (1xx) ones.
type finalStatus struct {
	*httptest.ResponseRecorder
	code int
}

func (w *finalStatus) WriteHeader(code int) {
	if code >= 200 && w.code == 0 {
		w.code = code
	}
	w.ResponseRecorder.WriteHeader(code)
}

func (w *finalStatus) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseRecorder.Write(p)
}

// pieces reads at most n bytes at a time.
type pieces struct {
	r io.Reader
	n int
}

func (p *pieces) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), p.n)]) }
