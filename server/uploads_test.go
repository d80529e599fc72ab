package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server"
)

// uploadEnv is env with uploads enabled into dir.
type uploadEnv struct {
	*env
	dir string
}

func newUploadEnv(t *testing.T, h2c bool, cfg server.Config) *uploadEnv {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Root = root
	if cfg.Uploads == "" {
		cfg.Uploads = filepath.Join(base, "uploads")
	}
	return &uploadEnv{env: serveEnv(t, h2c, base, cfg), dir: cfg.Uploads}
}

// send makes a request with a body and returns the response with its body.
func (e *env) send(t *testing.T, method, url string, body io.Reader, headers ...string) (*http.Response, []byte) {
	t.Helper()
	if strings.HasPrefix(url, "/") {
		url = e.url + url
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		if h == "" {
			continue
		}
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

func wantStatus(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %s, want %d; body %s", resp.Request.Method, resp.Request.URL, resp.Status, status, body)
	}
}

const tusHeader = "Tus-Resumable: 1.0.0"

func TestUploadsOffByDefault(t *testing.T) {
	e := newEnv(t, false, nil)
	resp, _ := e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: 1")
	wantStatus(t, resp, nil, http.StatusMethodNotAllowed)
	resp, _ = e.send(t, "POST", "/upload", nil)
	wantStatus(t, resp, nil, http.StatusMethodNotAllowed)
	resp, _ = e.send(t, "GET", "/files/0123456789abcdef0123456789abcdef", nil)
	wantStatus(t, resp, nil, http.StatusNotFound)
}

// The tus flow through the whole server, next to the files it serves.
func TestUploadThroughServer(t *testing.T) {
	run(t, func(t *testing.T, e0 *env) {
		e := newUploadEnv(t, e0.h2c, server.Config{})
		e.write(t, "static.txt", []byte("static file\n"))
		data := ferrytest.Bytes(200000, 1)
		resp, body := e.send(t, "POST", "/files/", bytes.NewReader(data[:100000]), tusHeader, "Upload-Length: 200000",
			"Content-Type: application/offset+octet-stream")
		wantStatus(t, resp, body, 201)
		loc := resp.Header.Get("Location")
		resp, body = e.send(t, "PATCH", loc, bytes.NewReader(data[100000:]), tusHeader,
			"Content-Type: application/offset+octet-stream", "Upload-Offset: 100000")
		wantStatus(t, resp, body, 204)
		resp, body = e.send(t, "GET", loc, nil)
		wantStatus(t, resp, body, 200)
		mustEqualBytes(t, "download", body, data)
		resp, body = e.send(t, "GET", "/static.txt", nil)
		wantStatus(t, resp, body, 200)
		// Upload errors are problem details.
		resp, body = e.send(t, "PATCH", loc, strings.NewReader("x"), tusHeader, "Content-Type: application/offset+octet-stream", "Upload-Offset: nope")
		wantStatus(t, resp, body, 400)
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("error Content-Type %q", ct)
		}
	})
}

func TestUploadToken(t *testing.T) {
	e := newUploadEnv(t, false, server.Config{Token: "s3cret"})
	e.write(t, "public.txt", []byte("public\n"))
	for _, auth := range []string{"", "Authorization: Bearer wrong", "Authorization: Basic czNjcmV0", "Authorization: Bearer s3cret2", "Authorization: Bearers3cret"} {
		resp, body := e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: 1", auth)
		wantStatus(t, resp, body, 401)
		if resp.Header.Get("WWW-Authenticate") == "" || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("401 headers %v", resp.Header)
		}
		resp, body = e.send(t, "POST", "/upload", nil, auth)
		wantStatus(t, resp, body, 401)
	}
	resp, body := e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: 1", "Authorization: Bearer s3cret")
	wantStatus(t, resp, body, 201)
	loc := resp.Header.Get("Location")
	resp, body = e.send(t, "HEAD", loc, nil, tusHeader)
	wantStatus(t, resp, body, 401)
	resp, body = e.send(t, "HEAD", loc, nil, tusHeader, "authorization: bearer s3cret")
	wantStatus(t, resp, body, 200)
	// Discovery and the files under Root stay open.
	resp, body = e.send(t, "OPTIONS", "/files/", nil)
	wantStatus(t, resp, body, 204)
	resp, body = e.send(t, "GET", "/public.txt", nil)
	wantStatus(t, resp, body, 200)
	resp, body = e.send(t, "GET", "/healthz", nil)
	wantStatus(t, resp, body, 200)
}

// A new Server on the same directory continues every upload at its
// durable offset; bytes a crash left past that offset are dropped.
func TestUploadSurvivesRestart(t *testing.T) {
	base := t.TempDir()
	uploads := filepath.Join(base, "uploads")
	data := ferrytest.Bytes(500000, 2)
	e1 := newUploadEnv(t, false, server.Config{Uploads: uploads})
	resp, body := e1.send(t, "POST", "/files/", bytes.NewReader(data[:200000]), tusHeader, "Upload-Length: 500000",
		"Content-Type: application/offset+octet-stream", "Upload-Metadata: filename "+b64("movie.mp4"))
	wantStatus(t, resp, body, 201)
	id := strings.TrimPrefix(resp.Header.Get("Location"), e1.url+"/files/")
	e1.srv.Close()

	// A crash after writing but before recording: garbage past the offset.
	f, err := os.OpenFile(filepath.Join(uploads, id+".bin"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte{0xee}, 12345))
	f.Close()

	e2 := newUploadEnv(t, false, server.Config{Uploads: uploads})
	loc := e2.url + "/files/" + id
	resp, body = e2.send(t, "HEAD", loc, nil, tusHeader)
	wantStatus(t, resp, body, 200)
	if got := resp.Header.Get("Upload-Offset"); got != "200000" {
		t.Fatalf("after restart Upload-Offset = %s, want 200000", got)
	}
	resp, body = e2.send(t, "PATCH", loc, bytes.NewReader(data[200000:]), tusHeader, "Content-Type: application/offset+octet-stream", "Upload-Offset: 200000")
	wantStatus(t, resp, body, 204)
	resp, body = e2.send(t, "GET", loc, nil)
	wantStatus(t, resp, body, 200)
	mustEqualBytes(t, "download after restart", body, data)
	if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename=movie.mp4" {
		t.Errorf("Content-Disposition %q", cd)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// formResult is the JSON POST /upload answers with.
type formResult struct {
	Files []struct {
		Field  string `json:"field"`
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
		ID     string `json:"id"`
		URL    string `json:"url"`
	} `json:"files"`
}

func TestMultipartUpload(t *testing.T) {
	run(t, func(t *testing.T, e0 *env) {
		e := newUploadEnv(t, e0.h2c, server.Config{})
		// Names as they appear in the quoted-string of the part header.
		files := []struct{ field, name, want string }{
			{"file", "a.txt", "a.txt"},
			{"file", "../../etc/passwd", "passwd"},
			{"other", `dir\\evil` + "\u202e" + `txt.exe`, "eviltxt.exe"},
		}
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.WriteField("comment", "not a file")
		var contents [][]byte
		for i, f := range files {
			h := textproto.MIMEHeader{}
			// Raw header, so the hostile name reaches the server unchanged.
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, f.field, f.name))
			h.Set("Content-Type", "application/octet-stream")
			w, _ := mw.CreatePart(h)
			c := ferrytest.Bytes(1000*(i+1)+i, uint64(10+i))
			w.Write(c)
			contents = append(contents, c)
		}
		mw.Close()
		resp, body := e.send(t, "POST", "/upload", &buf, "Content-Type: "+mw.FormDataContentType())
		wantStatus(t, resp, body, 201)
		var res formResult
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("response %s: %v", body, err)
		}
		if len(res.Files) != len(files) {
			t.Fatalf("stored %d files, want %d: %s", len(res.Files), len(files), body)
		}
		for i, f := range res.Files {
			sum := sha256.Sum256(contents[i])
			if f.Name != files[i].want || f.Field != files[i].field || f.Size != int64(len(contents[i])) || f.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("file %d = %+v; want name %q, field %q, size %d, sha256 %x", i, f, files[i].want, files[i].field, len(contents[i]), sum)
			}
			r, b := e.send(t, "GET", f.URL, nil)
			wantStatus(t, r, b, 200)
			mustEqualBytes(t, "download "+f.Name, b, contents[i])
		}
		// Nothing but upload files in the uploads directory, nothing new
		// beside it.
		entries, _ := os.ReadDir(e.dir)
		for _, ent := range entries {
			if n := ent.Name(); !strings.HasSuffix(n, ".bin") && !strings.HasSuffix(n, ".info") {
				t.Errorf("unexpected %q in the uploads directory", n)
			}
		}
		if entries, _ := os.ReadDir(e.base); len(entries) != 2 {
			t.Errorf("%d entries beside root and uploads", len(entries)-2)
		}

		resp, body = e.send(t, "POST", "/upload", strings.NewReader("plain"), "Content-Type: text/plain")
		wantStatus(t, resp, body, 415)
		buf.Reset()
		mw = multipart.NewWriter(&buf)
		mw.WriteField("only", "fields")
		mw.Close()
		resp, body = e.send(t, "POST", "/upload", &buf, "Content-Type: "+mw.FormDataContentType())
		wantStatus(t, resp, body, 400)
	})
}

func TestMultipartMaxSize(t *testing.T) {
	e := newUploadEnv(t, false, server.Config{MaxUploadSize: 1000})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("file", "big.bin")
	w.Write(make([]byte, 1001))
	mw.Close()
	resp, body := e.send(t, "POST", "/upload", &buf, "Content-Type: "+mw.FormDataContentType())
	wantStatus(t, resp, body, 413)
	if entries, _ := os.ReadDir(e.dir); len(entries) != 0 {
		t.Errorf("a refused upload left %d files", len(entries))
	}
}

// A server started with Uploads and nothing else is protected: one client
// creates at most a burst of uploads and then a steady rate, and uploads
// leave 5% of their file system free (at most 4 GiB), measured as bytes
// arrive, so that space freed later is usable at once; 10 GiB in all
// where the free space is unknown. Negative values lift the limits.
func TestUploadLimitsByDefault(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func() { mu.Lock(); now = now.Add(time.Second); mu.Unlock() }
	const size = 10 << 30 // 512 MiB of it kept back
	free := int64(1 << 30)
	cfg := server.WithDiskSpace(server.Config{}, func(string) (int64, int64, bool) {
		mu.Lock()
		defer mu.Unlock()
		return free, size, true
	})
	e := newUploadEnv(t, false, server.WithClock(cfg, clock))
	resp, body := e.send(t, "POST", "/files/", nil, tusHeader, fmt.Sprintf("Upload-Length: %d", 600<<20))
	wantStatus(t, resp, body, 507)
	resp, body = e.send(t, "POST", "/files/", nil, tusHeader, fmt.Sprintf("Upload-Length: %d", 400<<20))
	wantStatus(t, resp, body, 201)
	mu.Lock()
	free = 2 << 30 // something else freed space
	mu.Unlock()
	advance()
	resp, body = e.send(t, "POST", "/files/", nil, tusHeader, fmt.Sprintf("Upload-Length: %d", 1<<30))
	wantStatus(t, resp, body, 201)
	mu.Lock()
	free = 100 << 20 // something else filled it
	mu.Unlock()
	advance()
	resp, body = e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: 1")
	wantStatus(t, resp, body, 507)
	unknown := newUploadEnv(t, false, server.WithDiskSpace(server.Config{}, func(string) (int64, int64, bool) { return 0, 0, false }))
	resp, body = unknown.send(t, "POST", "/files/", nil, tusHeader, fmt.Sprintf("Upload-Length: %d", server.DefaultMaxUploadStorage))
	wantStatus(t, resp, body, 507)

	// The creation rate, with room to spare and a clock that stands still.
	mu.Lock()
	free = 1 << 30
	mu.Unlock()
	e = newUploadEnv(t, false, server.WithClock(cfg, clock))
	for i := range server.DefaultUploadCreationBurst {
		resp, body := e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: 1")
		if resp.StatusCode != 201 {
			t.Fatalf("creation %d: %s; body %s", i, resp.Status, body)
		}
	}
	resp, body = e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: 1")
	wantStatus(t, resp, body, 429)
	if resp.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
	}
	advance()
	for range server.DefaultUploadCreationRate {
		resp, body := e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: 1")
		wantStatus(t, resp, body, 201)
	}

	open := newUploadEnv(t, false, server.Config{UploadCreationRate: -1, MaxUploadStorage: -1})
	for range server.DefaultUploadCreationBurst + 1 {
		resp, body := open.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: 1")
		wantStatus(t, resp, body, 201)
	}
	resp, body = open.send(t, "POST", "/files/", nil, tusHeader, fmt.Sprintf("Upload-Length: %d", server.DefaultMaxUploadStorage))
	wantStatus(t, resp, body, 201)
}

// A form whose content arrives whole but ends inside a file part is the
// client's mistake: 400 malformed-multipart, and the cut file is not kept.
func TestMultipartCutShort(t *testing.T) {
	e := newUploadEnv(t, false, server.Config{})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("file", "cut.bin")
	w.Write(ferrytest.Bytes(5000, 1))
	mw.Close()
	cut := buf.Bytes()[:buf.Len()-len(mw.Boundary())-10]
	resp, body := e.send(t, "POST", "/upload", bytes.NewReader(cut), "Content-Type: "+mw.FormDataContentType())
	wantStatus(t, resp, body, 400)
	if !bytes.Contains(body, []byte("malformed-multipart")) {
		t.Errorf("problem %s, want malformed-multipart", body)
	}
	if bins, _ := filepath.Glob(filepath.Join(e.dir, "*.bin")); len(bins) != 0 {
		t.Errorf("the cut file was kept: %v", bins)
	}
}

// MaxUploadSize bounds a form request, not each of its files: of three
// files of 600 bytes under a limit of 1000, the first is stored and the
// request fails at the second, which leaves nothing.
func TestMultipartMaxSizePerRequest(t *testing.T) {
	e := newUploadEnv(t, false, server.Config{MaxUploadSize: 1000})
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := range 3 {
		w, _ := mw.CreateFormFile("file", fmt.Sprintf("part%d.bin", i))
		w.Write(ferrytest.Bytes(600, uint64(i)))
	}
	mw.Close()
	resp, body := e.send(t, "POST", "/upload", &buf, "Content-Type: "+mw.FormDataContentType())
	wantStatus(t, resp, body, 413)
	var p struct {
		Files []json.RawMessage `json:"files"`
	}
	if err := json.Unmarshal(body, &p); err != nil || len(p.Files) != 1 {
		t.Errorf("problem %s: want the one file stored listed", body)
	}
	var stored int64
	bins, _ := filepath.Glob(filepath.Join(e.dir, "*.bin"))
	for _, b := range bins {
		fi, _ := os.Stat(b)
		stored += fi.Size()
	}
	if len(bins) != 1 || stored != 600 {
		t.Errorf("%d files of %d bytes stored, want one of 600", len(bins), stored)
	}
}

// A 64 MiB file through POST /upload: the server streams it to disk, so
// the heap stays small however big the file is.
func TestMultipartMemory(t *testing.T) {
	e := newUploadEnv(t, false, server.Config{})
	const size = 64 << 20
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	sum := sha256.New()
	go func() {
		w, err := mw.CreateFormFile("file", "big.bin")
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		chunk := ferrytest.Bytes(1<<20, 3)
		for range size >> 20 {
			sum.Write(chunk)
			if _, err := w.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	resp, body := e.send(t, "POST", "/upload", pr, "Content-Type: "+mw.FormDataContentType())
	close(stop)
	<-sampled
	wantStatus(t, resp, body, 201)

	var res formResult
	if err := json.Unmarshal(body, &res); err != nil || len(res.Files) != 1 {
		t.Fatalf("response %s: %v", body, err)
	}
	if f := res.Files[0]; f.Size != size || f.SHA256 != hex.EncodeToString(sum.Sum(nil)) {
		t.Errorf("stored %d bytes with sha256 %s, want %d and %x", f.Size, f.SHA256, size, sum.Sum(nil))
	}
	grown := int64(peak.Load()) - int64(before.HeapInuse)
	t.Logf("heap in use: %d MiB before, peak %d MiB (+%d MiB) for a %d MiB upload",
		before.HeapInuse>>20, peak.Load()>>20, grown>>20, size>>20)
	// Client and server share this heap: the client's 1 MiB chunk, the
	// transport's and the store's buffers. A copy of the file would be 64.
	if grown > 24<<20 {
		t.Errorf("heap grew by %d MiB during a %d MiB upload; it should not depend on the size", grown>>20, size>>20)
	}
	fi, err := os.Stat(filepath.Join(e.dir, res.Files[0].ID+".bin"))
	if err != nil || fi.Size() != size {
		t.Errorf("stored file: %v, %v", fi, err)
	}
}

// A finished upload is the client's bytes under the client's type and
// name: it is served so that it never runs as a page of this origin.
func TestUploadDownloadNotActive(t *testing.T) {
	e := newUploadEnv(t, false, server.Config{})
	for _, c := range []struct {
		ctype, name string
		wantType    string
		wantDisp    string
	}{
		{"text/html", "page.html", "application/octet-stream", "attachment; filename=page.html"},
		{"image/svg+xml", "logo.svg", "application/octet-stream", "attachment; filename=logo.svg"},
		{"application/javascript", "a.js", "application/octet-stream", "attachment; filename=a.js"},
		{"text/html; charset=utf-7", "x", "application/octet-stream", "attachment; filename=x"},
		{"not a type", "x", "application/octet-stream", "attachment; filename=x"},
		{"video/mp4", "clip.mp4", "video/mp4", "inline; filename=clip.mp4"},
		{"image/png; foo=bar", "shot.png", "image/png", "inline; filename=shot.png"},
		{"text/plain", "read me.txt", "text/plain; charset=utf-8", `inline; filename="read me.txt"`},
		{"application/octet-stream", "été \"1\".bin", "application/octet-stream", `attachment; filename="_t_ _1_.bin"; filename*=UTF-8''%C3%A9t%C3%A9%20_1_.bin`},
	} {
		data := []byte("<script>alert(document.domain)</script>")
		resp, body := e.send(t, "POST", "/files/", bytes.NewReader(data), tusHeader,
			"Upload-Length: "+fmt.Sprint(len(data)), "Content-Type: application/offset+octet-stream",
			"Upload-Metadata: filename "+b64(c.name)+",filetype "+b64(c.ctype))
		wantStatus(t, resp, body, 201)
		resp, body = e.send(t, "GET", resp.Header.Get("Location"), nil)
		wantStatus(t, resp, body, 200)
		for k, want := range map[string]string{
			"Content-Type":            c.wantType,
			"Content-Disposition":     c.wantDisp,
			"X-Content-Type-Options":  "nosniff",
			"Content-Security-Policy": "sandbox",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("upload declared %q named %q: %s = %q, want %q", c.ctype, c.name, k, got, want)
			}
		}
	}
}

// Every limit of Config follows one rule: 0 is its default, a negative
// value turns it off. A negative burst is no burst: creations come one at
// a time, at the rate; a negative MaxUploadSize is no limit.
func TestConfigNegativeIsOff(t *testing.T) {
	now := time.Now()
	e := newUploadEnv(t, false, server.WithClock(server.Config{UploadCreationBurst: -1, UploadCreationRate: 1, MaxUploadSize: -1, MaxUploadStorage: -1},
		func() time.Time { return now }))
	resp, body := e.send(t, "POST", "/files/", nil, tusHeader, fmt.Sprintf("Upload-Length: %d", int64(1)<<40))
	wantStatus(t, resp, body, 201)
	resp, body = e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: 1")
	wantStatus(t, resp, body, 429)
}
