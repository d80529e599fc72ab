package ferry_test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// davStore takes PUT and POST bodies as a WebDAV server or a presigned URL
// does; the first `drop` requests are cut after 1000 bytes, and a path
// under /forbidden/ is refused.
type davStore struct {
	mu       sync.Mutex
	drop     int
	requests int
	files    map[string][]byte
	types    map[string]string
}

func (d *davStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.requests++
	cut := d.drop > 0
	if cut {
		d.drop--
	}
	d.mu.Unlock()
	if r.URL.Path == "/forbidden" {
		http.Error(w, "signature does not match", http.StatusForbidden)
		return
	}
	if cut {
		io.CopyN(io.Discard, r.Body, 1000)
		panic(http.ErrAbortHandler) // the connection drops mid-body
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	d.mu.Lock()
	d.files[r.Method+" "+r.URL.Path] = body
	d.types[r.URL.Path] = r.Header.Get("Content-Type")
	d.mu.Unlock()
	w.Header().Set("ETag", `"stored"`)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, "stored")
}

// seen returns the requests made so far and what is stored under key.
func (d *davStore) seen(key string) (int, []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests, d.files[key]
}

func newDAV(t *testing.T, h2 bool, drop int) (*davStore, string) {
	d := &davStore{drop: drop, files: map[string][]byte{}, types: map[string]string{}}
	return d, newServer(t, h2, ferrytest.Handler(func(http.Handler) http.Handler { return d })).URL
}

// upload runs req to its end with runUpload, without the events.
func upload(t *testing.T, s *ferry.Session, req ferry.UploadRequest) (*ferry.Result, error) {
	t.Helper()
	res, _, err := runUpload(t, s, req)
	return res, err
}

func TestPlainUpload(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		content := ferrytest.Bytes(300<<10, 7)
		path := filepath.Join(t.TempDir(), "photo.jpg")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		d, url := newDAV(t, h2, 0)
		s := mustSession(t, testConfig(h2))
		for _, p := range []ferry.Protocol{ferry.ProtocolPut, ferry.ProtocolPost} {
			res, err := upload(t, s, ferry.UploadRequest{URL: url + "/up/photo.jpg", Path: path, Protocol: p, SHA256: true,
				Header: http.Header{"Content-Type": {"image/jpeg"}}})
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			method := map[ferry.Protocol]string{ferry.ProtocolPut: "PUT", ferry.ProtocolPost: "POST"}[p]
			if _, got := d.seen(method + " /up/photo.jpg"); string(got) != string(content) {
				t.Errorf("%s: the server holds %d bytes, want the file's %d", p, len(got), len(content))
			}
			d.mu.Lock()
			ct := d.types["/up/photo.jpg"]
			d.mu.Unlock()
			if ct != "image/jpeg" {
				t.Errorf("%s: Content-Type %q", p, ct)
			}
			if res.StatusCode != 201 || string(res.Response) != "stored" || res.Header.Get("ETag") != `"stored"` {
				t.Errorf("%s: answer %d %q %v", p, res.StatusCode, res.Response, res.Header)
			}
			if res.Uploaded != int64(len(content)) || res.Size != int64(len(content)) || res.SHA256 != ferrytest.SHA256Hex(content) || res.Protocol != p {
				t.Errorf("%s: uploaded %d of %d, sha-256 %s, protocol %s", p, res.Uploaded, res.Size, res.SHA256, res.Protocol)
			}
		}
	})
}

// A PUT is idempotent: one that is cut off is sent again whole. A POST may
// have acted: it is not, unless the request says it is safe.
func TestPlainUploadRetries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	content := ferrytest.Bytes(64<<10, 8)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	s := mustSession(t, testConfig(false))

	d, url := newDAV(t, false, 1)
	if _, err := upload(t, s, ferry.UploadRequest{URL: url + "/f", Path: path, Protocol: ferry.ProtocolPut}); err != nil {
		t.Fatalf("PUT cut once: %v", err)
	}
	if n, got := d.seen("PUT /f"); n != 2 || string(got) != string(content) {
		t.Errorf("PUT cut once: %d requests, %d bytes stored", n, len(got))
	}

	d, url = newDAV(t, false, 1)
	_, err := upload(t, s, ferry.UploadRequest{URL: url + "/f", Path: path, Protocol: ferry.ProtocolPost})
	if n, _ := d.seen(""); err == nil || n != 1 {
		t.Errorf("POST cut once: %v after %d requests, want a failure after 1", err, n)
	}

	d, url = newDAV(t, false, 1)
	_, err = upload(t, s, ferry.UploadRequest{URL: url + "/f", Path: path, Protocol: ferry.ProtocolPost, Idempotent: true})
	if n, _ := d.seen(""); err != nil || n != 2 {
		t.Errorf("idempotent POST cut once: %v after %d requests, want success after 2", err, n)
	}
}

// A refusal fails the upload with the status, at once.
func TestPlainUploadRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, url := newDAV(t, false, 0)
	s := mustSession(t, testConfig(false))
	_, err := upload(t, s, ferry.UploadRequest{URL: url + "/forbidden", Path: path, Protocol: ferry.ProtocolPut})
	var se *ferry.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusForbidden {
		t.Fatalf("PUT refused with 403: %v, want a *StatusError 403", err)
	}
	if n, _ := d.seen(""); n != 1 {
		t.Errorf("a 403 was sent %d times", n)
	}
	if err := (&ferry.UploadRequest{URL: url, Path: path, Protocol: ferry.ProtocolPut, Connections: 4}).Validate(); err == nil {
		t.Error("a plain upload over 4 connections was taken")
	}
}

// A POST a server answered with a redirect was acted on: a 429 where the
// redirect leads does not send it again, by any upload protocol.
func TestUploadPOSTNotRepeatedAfterRedirect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	os.WriteFile(path, []byte("the form's file"), 0o644)
	var mu sync.Mutex
	posts := 0
	srv := newServer(t, false, ferrytest.Handler(func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/busy":
				http.Error(w, "come back later", http.StatusTooManyRequests)
			default:
				mu.Lock()
				posts++
				mu.Unlock()
				io.Copy(io.Discard, r.Body)
				http.Redirect(w, r, "/busy", http.StatusSeeOther)
			}
		})
	}))
	s := mustSession(t, uploadConfig())
	for _, c := range []struct {
		name string
		req  ferry.UploadRequest
	}{
		{"multipart", ferry.UploadRequest{URL: srv.URL + "/form", Path: path, Protocol: ferry.ProtocolMultipart}},
		{"form", ferry.UploadRequest{URL: srv.URL + "/form", Form: []ferry.FormPart{{Name: "a", Value: "b"}}}},
		{"post", ferry.UploadRequest{URL: srv.URL + "/form", Path: path, Protocol: ferry.ProtocolPost}},
	} {
		mu.Lock()
		posts = 0
		mu.Unlock()
		if _, err := upload(t, s, c.req); err == nil {
			t.Errorf("%s: an upload answered 429 in the end succeeded", c.name)
		}
		mu.Lock()
		if posts != 1 {
			t.Errorf("%s: the POST was sent %d times, want once", c.name, posts)
		}
		mu.Unlock()
	}
}
