package ferry_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

func TestRemoteName(t *testing.T) {
	tests := []struct{ url, want string }{
		{"http://h/a/report.pdf", "report.pdf"},
		{"http://h/a/report.pdf?x=1#y", "report.pdf"},
		{"http://h/", "index.html"},
		{"http://h", "index.html"},
		{"http://h/dir/", "index.html"},
		{"http://h/..", "index.html"},
		{"http://h/a/%2E%2E", "index.html"},
		{"http://h/.bashrc", "bashrc"},
		{"http://h/...", "index.html"},
		{"http://h/a%2Fb", "b"},
		{"http://h/a%5Cb", "a_b"},
		{"http://h/x%0Ay%1B%5B31m.txt", "xy[31m.txt"},
		{"http://h/invoice%E2%80%AEfdp.exe", "invoicefdp.exe"},
		{"http://h/%FF%FE.bin", "__.bin"},
		{"http://h/" + strings.Repeat("n", 300) + ".iso", strings.Repeat("n", 196) + ".iso"},
		{"http://h/" + strings.Repeat("é", 150), strings.Repeat("é", 100)},
		{"http://h/%C3%A9t%C3%A9.txt", "été.txt"},
		{"%zz", "index.html"},
	}
	for _, tt := range tests {
		if got := ferry.RemoteName(tt.url); got != tt.want {
			t.Errorf("RemoteName(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}

// A directory destination gets the file inside under the URL's name; the
// result names where it went.
func TestDirectoryDestination(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(64<<10))
	s := mustSession(t, testConfig(false))
	dir := t.TempDir()
	os.Symlink(dir, filepath.Join(t.TempDir(), "link"))
	res, _, err := download(t, s, ferry.DownloadRequest{URL: srv.URL + "/a/report.pdf", Path: dir, SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "report.pdf")
	if res.Path != want || res.SHA256 != srv.SHA256() {
		t.Errorf("Path %q SHA256 %s, want %q and %s", res.Path, res.SHA256, want, srv.SHA256())
	}
	assertNoLeftovers(t, dir, "report.pdf")
}

// A missing parent is found before the first request; CreateDirs makes it,
// and a download that then fails leaves no directory it made.
func TestMissingParent(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(64<<10))
	s := mustSession(t, testConfig(false))
	root := t.TempDir()
	for _, path := range []string{filepath.Join(root, "a", "b", "f"), filepath.Join(root, "a") + "/"} {
		_, err := s.NewDownload(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/f", Path: path})
		if !errors.Is(err, ferry.ErrMissingDir) || !errors.Is(err, ferry.ErrInvalidRequest) {
			t.Errorf("%s: %v, want ErrMissingDir", path, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests before the refusal", n)
	}
	file := filepath.Join(root, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := s.NewDownload(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/f", Path: filepath.Join(file, "f")}); !errors.Is(err, ferry.ErrInvalidRequest) {
		t.Errorf("parent is a file: %v, want ErrInvalidRequest", err)
	}

	res, _, err := download(t, s, ferry.DownloadRequest{URL: srv.URL + "/x.bin", Path: filepath.Join(root, "a", "b") + "/", CreateDirs: true})
	if err != nil || res.Path != filepath.Join(root, "a", "b", "x.bin") {
		t.Fatalf("CreateDirs: %+v, %v", res, err)
	}
	os.RemoveAll(filepath.Join(root, "a"))

	fails := newServer(t, false, ferrytest.Status(404, 100))
	_, _, err = download(t, s, ferry.DownloadRequest{URL: fails.URL + "/f", Path: filepath.Join(root, "a", "b", "f"), CreateDirs: true})
	var se *ferry.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a 404", err)
	}
	assertNoLeftovers(t, root, "file")
}

// A symbolic link at the destination is followed only to a directory, a
// device or a FIFO; a link to a file, or to nothing, is refused before the
// first request and left as it is.
func TestLinkDestination(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(64<<10))
	s := mustSession(t, testConfig(false))
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	for name, target := range map[string]string{"to-file": victim, "to-nothing": filepath.Join(dir, "nowhere")} {
		link := filepath.Join(dir, name)
		os.Symlink(target, link)
		_, err := s.NewDownload(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/f", Path: link})
		var ue *ferry.UnsafeFileError
		if !errors.As(err, &ue) || !errors.Is(err, ferry.ErrUnsafeFile) {
			t.Errorf("%s: %v, want an *UnsafeFileError", name, err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s: the link was replaced", name)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("the victim holds %q", b)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("%d requests made", n)
	}
}

// A FIFO destination is written in place over one connection: no .part or
// control file beside it, and it stays a FIFO.
func TestFIFODestination(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(3<<20))
	s := mustSession(t, testConfig(false))
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			sum <- err.Error()
			return
		}
		defer f.Close()
		h := sha256.New()
		io.Copy(h, f)
		sum <- hex.EncodeToString(h.Sum(nil))
	}()
	res, _, err := download(t, s, ferry.DownloadRequest{URL: srv.URL + "/f", Path: fifo, SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-sum; got != srv.SHA256() || res.SHA256 != srv.SHA256() {
		t.Errorf("the reader got %s, the result says %s; want %s", got, res.SHA256, srv.SHA256())
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v", err)
	}
	assertNoLeftovers(t, dir, "pipe")
	if n := rangedGETs(srv); n != 0 {
		t.Errorf("%d ranged requests: a stream is one connection", n)
	}
	if _, err := s.NewDownload(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/f", Path: fifo, Connections: 4}); !errors.Is(err, ferry.ErrInvalidRequest) {
		t.Errorf("Connections 4 to a FIFO: %v, want ErrInvalidRequest", err)
	}
}

// A Writer gets the body as it arrives; nothing is written to disk.
func TestWriterDestination(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(1<<20), ferrytest.DropAfter(300<<10, 1))
	s := mustSession(t, testConfig(false))
	var buf bytes.Buffer
	dir := t.TempDir()
	t.Chdir(dir)
	res, _, err := download(t, s, ferry.DownloadRequest{URL: srv.URL + "/f", Writer: &buf, SHA256: true})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(buf.Bytes())
	if hex.EncodeToString(h[:]) != srv.SHA256() || res.SHA256 != srv.SHA256() {
		t.Errorf("the writer got %d bytes of another content", buf.Len())
	}
	assertNoLeftovers(t, dir, "")
	for _, req := range []ferry.DownloadRequest{
		{URL: srv.URL + "/f", Writer: &buf, Continue: true},
		{URL: srv.URL + "/f", Writer: &buf, KeepState: true},
		{URL: srv.URL + "/f", Writer: &buf, Connections: 2},
	} {
		if _, err := s.NewDownload(context.Background(), req); !errors.Is(err, ferry.ErrInvalidRequest) {
			t.Errorf("%+v: %v, want ErrInvalidRequest", req, err)
		}
	}
}

// RemoteName gives a name that stays in its directory and shows what it
// is, whatever the URL.
func FuzzRemoteName(f *testing.F) {
	for _, s := range []string{"http://h/a/report.pdf", "http://h/", "http://h/..", "http://h/.bashrc", "http://h/a%5Cb",
		"http://h/x%0Ay%1B%5B31m.txt", "http://h/invoice%E2%80%AEfdp.exe", "http://h/%FF%FE.bin", "%zz",
		"http://h/" + strings.Repeat("é", 150), "http://h/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rawURL string) {
		name := ferry.RemoteName(rawURL)
		switch {
		case name == "" || name == "." || name == "..":
			t.Fatalf("RemoteName(%q) = %q", rawURL, name)
		case strings.ContainsAny(name, "/\\\x00"), filepath.Base(name) != name:
			t.Fatalf("RemoteName(%q) = %q leaves its directory", rawURL, name)
		case strings.HasPrefix(name, ".") || strings.HasPrefix(name, " "):
			t.Fatalf("RemoteName(%q) = %q is hidden", rawURL, name)
		case len(name) > 200 || !utf8.ValidString(name):
			t.Fatalf("RemoteName(%q) = %q: %d bytes, valid UTF-8 %v", rawURL, name, len(name), utf8.ValidString(name))
		}
		for _, r := range name {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("RemoteName(%q) = %q holds %U", rawURL, name, r)
			}
		}
	})
}

// A stream cannot take back what it wrote, so a suspended one does not
// start over when resumed: it fails, and the writer holds a prefix of the
// resource, never bytes twice.
func TestStreamSuspendResume(t *testing.T) {
	srv := newServer(t, false, ferrytest.Size(4<<20), ferrytest.Throttle(8<<20))
	s := mustSession(t, testConfig(false))
	var buf syncBuf
	task, err := s.Download(context.Background(), ferry.DownloadRequest{URL: srv.URL + "/f", Writer: &buf})
	if err != nil {
		t.Fatal(err)
	}
	waitProgress(t, task, 64<<10)
	task.Suspend()
	if err := task.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := task.Wait(context.Background()); !errors.Is(err, ferry.ErrStreamRestart) {
		t.Fatalf("Wait: %v, want ErrStreamRestart", err)
	}
	got := buf.Bytes()
	resp, err := http.Get(srv.URL + "/f")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(got) == 0 || !bytes.HasPrefix(want, got) {
		t.Errorf("the writer holds %d bytes that are not the resource's first", len(got))
	}
}

// syncBuf is a bytes.Buffer safe to read while a task writes it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
