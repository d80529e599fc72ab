package ferry_test

import (
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// formSite reads a multipart/form-data POST part by part and records
// each part and the request's declared and actual lengths.
type formSite struct {
	mu       sync.Mutex
	parts    []string // name, filename, type and content of each part
	declared int64
	read     int64
}

func (f *formSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	counted := &countReader{r: r.Body}
	mr := multipart.NewReader(counted, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, fmt.Sprintf("%s|%s|%s|%s", p.FormName(), p.FileName(), p.Header.Get("Content-Type"), b))
	}
	io.Copy(io.Discard, counted)
	f.mu.Lock()
	f.parts, f.declared, f.read = parts, r.ContentLength, counted.n
	f.mu.Unlock()
	fmt.Fprintf(w, "%d parts", len(parts))
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestMultipartForm(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		site := &formSite{}
		url := newServer(t, h2, ferrytest.Handler(func(http.Handler) http.Handler { return site })).URL
		dir := t.TempDir()
		write := func(name, content string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		doc := write("doc.json", `{"a":1}`)
		png := write("picture", "\x89PNG\r\n\x1a\n rest of it")
		main := write("main.txt", "the main file")
		res, _, err := runUpload(t, mustSession(t, uploadConfig()), ferry.UploadRequest{
			URL: url + "/form", Path: main, FieldName: "upload", Protocol: ferry.ProtocolMultipart,
			Form: []ferry.FormPart{
				{Name: "title", Value: "a \"quoted\" title"},
				{Name: "doc", Path: doc},
				{Name: "pic", Path: png, FileName: "p.png"},
				{Name: "raw", Path: png, ContentType: "application/x-raw"},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			`title|||a "quoted" title`,
			`doc|doc.json|application/json|{"a":1}`,
			"pic|p.png|image/png|\x89PNG\r\n\x1a\n rest of it",
			"raw|picture|application/x-raw|\x89PNG\r\n\x1a\n rest of it",
			"upload|main.txt|text/plain; charset=utf-8|the main file",
		}
		site.mu.Lock()
		defer site.mu.Unlock()
		if strings.Join(site.parts, "\n") != strings.Join(want, "\n") {
			t.Errorf("parts:\n%s\nwant:\n%s", strings.Join(site.parts, "\n"), strings.Join(want, "\n"))
		}
		if site.declared != site.read || site.read <= 0 {
			t.Errorf("Content-Length %d, body %d bytes: want them equal", site.declared, site.read)
		}
		if res.StatusCode != 200 || string(res.Response) != "5 parts" || res.Protocol != ferry.ProtocolMultipart || res.Uploaded != site.read {
			t.Errorf("result: %d %q %s, uploaded %d", res.StatusCode, res.Response, res.Protocol, res.Uploaded)
		}
	})
	bad := []ferry.UploadRequest{
		{URL: "http://example.com/", Form: []ferry.FormPart{{Name: "", Value: "x"}}},
		{URL: "http://example.com/", Form: []ferry.FormPart{{Name: "f", Path: "/nonexistent"}}},
		{URL: "http://example.com/", Protocol: ferry.ProtocolTus, Form: []ferry.FormPart{{Name: "a", Value: "b"}}},
		{URL: "http://example.com/", Form: []ferry.FormPart{{Name: "a\r\nX-Evil: 1", Value: "b"}}},
	}
	for _, r := range bad {
		if err := r.Validate(); err == nil {
			t.Errorf("%+v was taken", r)
		}
	}
}
