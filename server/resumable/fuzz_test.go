package resumable_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/memstore"
)

// recorder is a ResponseWriter in memory that, unlike
// httptest.ResponseRecorder, passes over interim (1xx) responses.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if code < 100 || code > 599 {
		panic("bad status")
	}
	if w.code == 0 && code >= 200 {
		w.code = code
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return w.body.Write(p)
}

// checkStore fails unless every upload in st is consistent: its bytes are
// its offset, within its length when known, and within max.
func checkStore(t *testing.T, st *memstore.Store, max int64) {
	t.Helper()
	ids, _ := st.List(context.Background())
	for _, id := range ids {
		u, err := st.GetUpload(context.Background(), id)
		if err != nil {
			continue
		}
		info, _ := u.GetInfo(context.Background())
		r, _ := u.GetReader(context.Background())
		n, _ := io.Copy(io.Discard, r)
		r.Close()
		if n != info.Offset || info.Offset > max || !info.SizeIsDeferred && (info.Offset > info.Size || info.Size > max) || info.Size < 0 {
			t.Fatalf("upload %s: %d bytes stored, %+v; limit %d", id, n, info, max)
		}
	}
}

// checkResponse fails unless w is a well-formed answer.
func checkResponse(t *testing.T, r *http.Request, w *recorder) {
	t.Helper()
	if w.code < 200 {
		t.Fatalf("%s %s: no final response", r.Method, r.URL)
	}
	if w.header.Get("Content-Type") == "application/problem+json" {
		var p map[string]any
		if err := json.Unmarshal(w.body.Bytes(), &p); err != nil || p["status"] != float64(w.code) {
			t.Fatalf("%s %s: %d with problem %q", r.Method, r.URL, w.code, w.body.Bytes())
		}
	}
}

// fuzzHeaders are the fields a fuzzed request may carry, in the order of
// the fuzzed values.
var fuzzHeaders = []string{
	"Tus-Resumable", "Upload-Draft-Interop-Version", "Upload-Offset", "Upload-Length", "Upload-Defer-Length",
	"Upload-Complete", "Upload-Incomplete", "Upload-Metadata", "Upload-Concat", "Upload-Checksum",
	"Content-Type", "Content-Disposition", "Content-Digest", "Repr-Digest",
}

// FuzzRequest sends one hostile request, with any of the upload fields,
// to a handler over a memstore holding a tus upload, a deferred one, a
// partial one and a final one. It must answer it, and leave every upload
// consistent and within MaxSize.
func FuzzRequest(f *testing.F) {
	seeds := []struct {
		method, target string
		fields         [14]string
		body           string
	}{
		{"POST", "", [14]string{0: "1.0.0", 3: "10"}, ""},
		{"POST", "", [14]string{0: "1.0.0", 3: "10", 10: "application/offset+octet-stream"}, "0123456789"},
		{"PATCH", "plain", [14]string{0: "1.0.0", 2: "0", 10: "application/offset+octet-stream"}, "abc"},
		{"PATCH", "deferred", [14]string{0: "1.0.0", 2: "0", 3: "3", 10: "application/offset+octet-stream"}, "abc"},
		{"PATCH", "plain", [14]string{0: "1.0.0", 2: "0", 9: "sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0=", 10: "application/offset+octet-stream"}, "abc"},
		{"POST", "", [14]string{1: "8", 5: "?1", 3: "3"}, "abc"},
		{"PATCH", "plain", [14]string{1: "6", 2: "0", 5: "?1", 10: "application/partial-upload"}, strings.Repeat("x", 100)},
		{"PATCH", "deferred", [14]string{1: "3", 2: "0", 6: "?0"}, "tail"},
		{"POST", "", [14]string{0: "1.0.0", 8: "final;/files/PARTIAL"}, ""},
		{"POST", "", [14]string{0: "1.0.0", 8: "final;/files/PARTIAL /files/PARTIAL"}, ""},
		{"HEAD", "final", [14]string{0: "1.0.0"}, ""},
		{"DELETE", "partial", [14]string{0: "1.0.0"}, ""},
		{"GET", "final", [14]string{}, ""},
		{"OPTIONS", "", [14]string{}, ""},
		{"POST", "", [14]string{0: "1.0.0", 3: "5", 7: "filename YS50eHQ=,bin AP8=", 11: "attachment; filename=\"../x\""}, ""},
		{"PATCH", "partial", [14]string{0: "1.0.0", 2: "999999999999999", 10: "application/offset+octet-stream"}, "x"},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.fields[0], s.fields[1], s.fields[2], s.fields[3], s.fields[4], s.fields[5], s.fields[6],
			s.fields[7], s.fields[8], s.fields[9], s.fields[10], s.fields[11], s.fields[12], s.fields[13], []byte(s.body))
	}
	const max = 1000
	f.Fuzz(func(t *testing.T, method, target, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13 string, body []byte) {
		st := memstore.New()
		h, err := resumable.New(resumable.Config{Store: st, MaxSize: max, MaxStorage: 3 * store.RecordBytes * 5, Expiry: -1, TempDir: t.TempDir(), MaxPartials: 4})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		do := func(r *http.Request) *recorder {
			w := newRecorder()
			h.ServeHTTP(w, r)
			checkResponse(t, r, w)
			return w
		}
		mk := func(fields ...string) string {
			r, _ := http.NewRequest("POST", "http://ferry.example/files/", nil)
			r.Header.Set("Tus-Resumable", "1.0.0")
			for i := 0; i < len(fields); i += 2 {
				r.Header.Set(fields[i], fields[i+1])
			}
			w := do(r)
			return strings.TrimPrefix(w.header.Get("Location"), "http://ferry.example")
		}
		uploads := map[string]string{
			"plain":    mk("Upload-Length", "100"),
			"deferred": mk("Upload-Defer-Length", "1"),
			"partial":  mk("Upload-Length", "5", "Upload-Concat", "partial"),
		}
		uploads["final"] = mk("Upload-Concat", "final;"+uploads["partial"])
		path := "/files/"
		if p, ok := uploads[target]; ok {
			path = p
		} else if target != "" {
			path += target
		}
		values := []string{v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13}
		r, err := http.NewRequest(method, "http://ferry.example"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		for i, v := range values {
			v = strings.ReplaceAll(v, "PARTIAL", strings.TrimPrefix(uploads["partial"], "/files/"))
			if v != "" {
				r.Header[fuzzHeaders[i]] = strings.Split(v, "\n") // a newline: two field lines
			}
		}
		do(r)
		checkStore(t, st, max)
		if _, used, _ := store.MeasureUsage(context.Background(), st); used > 3*store.RecordBytes*5 {
			t.Fatalf("the store holds %d bytes, past MaxStorage", used)
		}
	})
}

// FuzzPostForm sends a hostile multipart/form-data body to POST /upload.
// The handler must answer it, never store more than MaxSize for the
// request, and leave every file it reports finished and intact.
func FuzzPostForm(f *testing.F) {
	const boundary = "XyZ"
	form := func(parts ...string) []byte {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.SetBoundary(boundary)
		for i := 0; i+1 < len(parts); i += 2 {
			w, _ := mw.CreateFormFile("file", parts[i])
			io.WriteString(w, parts[i+1])
		}
		mw.WriteField("note", "not a file")
		mw.Close()
		return b.Bytes()
	}
	f.Add(form("a.txt", "hello"))
	f.Add(form("a", strings.Repeat("x", 600), "b", strings.Repeat("y", 600)))
	f.Add(form("../../etc/passwd", "root", "", "no name", "c\u202etxt.exe", ""))
	f.Add([]byte("--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\nunterminated"))
	f.Add([]byte("--XyZ--\r\n"))
	f.Add([]byte("garbage"))
	const max = 1000
	f.Fuzz(func(t *testing.T, body []byte) {
		st := memstore.New()
		h, err := resumable.New(resumable.Config{Store: st, MaxSize: max, Expiry: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		r, _ := http.NewRequest("POST", "http://ferry.example/upload", bytes.NewReader(body))
		r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		w := newRecorder()
		h.PostForm(w, r)
		checkResponse(t, r, w)

		var total int64
		ids, _ := st.List(context.Background())
		for _, id := range ids {
			u, _ := st.GetUpload(context.Background(), id)
			info, _ := u.GetInfo(context.Background())
			if !info.Finished() {
				t.Fatalf("upload %s left unfinished: %+v", id, info)
			}
			total += info.Size
		}
		if total > max {
			t.Fatalf("one request stored %d bytes under a limit of %d", total, max)
		}
		var res struct{ Files []resumable.FormFile }
		json.Unmarshal(w.body.Bytes(), &res)
		for _, ff := range res.Files {
			u, err := st.GetUpload(context.Background(), ff.ID)
			if err != nil {
				t.Fatalf("reported file %s is not stored: %v", ff.ID, err)
			}
			if info, _ := u.GetInfo(context.Background()); info.Size != ff.Size || !store.ValidID(ff.ID) {
				t.Fatalf("reported %+v, stored %+v", ff, info)
			}
		}
		if w.code == 201 && len(res.Files) != len(ids) {
			t.Fatalf("201 reports %d files, %d stored", len(res.Files), len(ids))
		}
	})
}
