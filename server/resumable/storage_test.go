package resumable_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/filestore"
	"github.com/ferryhq/ferry/server/store/memstore"
)

// storedBytes is what the uploads of a filestore directory hold on disk.
func storedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// MaxStorage bounds what the store holds, finished or not: creations,
// appends and concatenations that would pass it get 507, the bytes that
// fit are kept, and a removed upload makes room again. A restarted
// handler counts what the store holds from the store.
func TestMaxStorage(t *testing.T) {
	const max = 200 << 10
	e := newEnv(t, false, resumable.Config{MaxStorage: max})
	full := func(r *response) {
		t.Helper()
		r.expect(t, 507)
		if c := r.code(t); c != "storage-full" {
			t.Errorf("problem %q, want storage-full", c)
		}
	}
	full(e.do(t, "POST", "/files/", nil, tus, fmt.Sprintf("Upload-Length: %d", max+1)))

	a := e.create(t, 120<<10)
	e.patch(t, a, 0, make([]byte, 120<<10)).expect(t, 204)
	full(e.do(t, "POST", "/files/", nil, tus, "Upload-Length: 100000"))

	// Content of unknown length is kept up to the limit.
	d := e.do(t, "POST", "/files/", nil, tus, "Upload-Defer-Length: 1").expect(t, 201).Header.Get("Location")
	r := e.do(t, "PATCH", d, struct{ io.Reader }{strings.NewReader(strings.Repeat("z", 100<<10))},
		tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0")
	full(r)
	kept := r.Header.Get("Upload-Offset")
	if kept == "" || kept == "0" || kept == fmt.Sprint(100<<10) {
		t.Errorf("Upload-Offset %q after filling the storage: want what fit", kept)
	}
	full(e.patch(t, d, atoi(t, kept), []byte("more")))
	full(e.do(t, "POST", "/files/", "x", "Upload-Draft-Interop-Version: 8", "Upload-Complete: ?1"))
	if n := storedBytes(t, e.dir); n > max {
		t.Errorf("the store holds %d bytes, past the limit of %d", n, max)
	}

	// A restarted handler knows what the store holds.
	h2, err := resumable.New(resumable.Config{Store: e.store, MaxStorage: max})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	u2 := newServerFor(t, h2)
	e2 := &env{url: u2, client: e.client}
	full(e2.do(t, "POST", "/files/", nil, tus, "Upload-Length: 100000"))

	// Removing an upload makes room again.
	e.do(t, "DELETE", a, nil, tus).expect(t, 204)
	e.create(t, 60<<10)
	e2.do(t, "DELETE", strings.Replace(d, e.url, u2, 1), nil, tus).expect(t, 204)
	b := e2.create(t, 60<<10)
	e2.patch(t, b, 0, make([]byte, 60<<10)).expect(t, 204)
}

// Empty uploads are not free: each counts a record, so a flood of them
// fills MaxStorage long before the disk.
func TestMaxStorageTinyUploads(t *testing.T) {
	e := newEnv(t, false, resumable.Config{Store: memstore.New(), MaxStorage: 64 << 10})
	created := 0
	for ; created < 1000; created++ {
		r := e.do(t, "POST", "/files/", nil, tus, "Upload-Length: 0", "Upload-Metadata: filename "+b64(strings.Repeat("n", 1000)))
		if r.StatusCode == 507 {
			break
		}
		r.expect(t, 201)
	}
	if created == 0 || created >= 64 {
		t.Errorf("%d empty uploads fit in 64 KiB", created)
	}
}

// A concatenation copies its partial uploads, so it needs the room too.
func TestMaxStorageConcat(t *testing.T) {
	e := newEnv(t, false, resumable.Config{MaxStorage: 150 << 10})
	a := e.partial(t, make([]byte, 60<<10), 0)
	final := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+a).expect(t, 201).Header.Get("Location")
	e.patch(t, a, 0, make([]byte, 60<<10)).expect(t, 204)
	e.do(t, "HEAD", final, nil, tus).expect(t, 200).header(t, "Upload-Offset", fmt.Sprint(60<<10))
	second := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+a)
	second.expect(t, 507)
}

// MaxStorage needs a store that can list its uploads, to count them.
func TestMaxStorageNeedsLister(t *testing.T) {
	_, err := resumable.New(resumable.Config{Store: plainStore{memstore.New()}, MaxStorage: 1 << 20})
	if err == nil {
		t.Fatal("New with MaxStorage over a store without Lister succeeded")
	}
	st, _ := filestore.New(filestore.Config{Dir: t.TempDir()})
	var _ store.Lister = st
	h, err := resumable.New(resumable.Config{Store: st, MaxStorage: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// clientFrom returns a client that connects from the loopback address ip.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// Each client may create CreationBurst uploads at once and then
// CreationRate a second; past that it gets 429 with Retry-After, and
// nothing else it does is refused. Files of a form count one each.
func TestCreationRate(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, false, resumable.Config{Store: memstore.New(), CreationRate: 2, CreationBurst: 5, Now: clk.Now})
	var urls []string
	for range 5 {
		urls = append(urls, e.create(t, 3))
	}
	limited := func(r *response, retry string) {
		t.Helper()
		r.expect(t, 429)
		r.header(t, "Retry-After", retry)
		if c := r.code(t); c != "too-many-uploads" {
			t.Errorf("problem %q, want too-many-uploads", c)
		}
	}
	limited(e.do(t, "POST", "/files/", nil, tus, "Upload-Length: 3"), "1")
	limited(e.do(t, "POST", "/files/", "x", "Upload-Draft-Interop-Version: 8", "Upload-Complete: ?1"), "1")
	e.patch(t, urls[0], 0, []byte("abc")).expect(t, 204)
	e.do(t, "HEAD", urls[1], nil, tus).expect(t, 200)

	// Another client has its own allowance.
	other := &env{url: e.url, client: clientFrom(t, "127.0.0.2")}
	other.create(t, 1)

	clk.Advance(500 * time.Millisecond) // one more
	e.create(t, 3)
	limited(e.do(t, "POST", "/files/", nil, tus, "Upload-Length: 3"), "1")

	clk.Advance(time.Second) // two more: a form of three files stores two
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := range 3 {
		w, _ := mw.CreateFormFile("file", fmt.Sprintf("f%d", i))
		w.Write([]byte("form file"))
	}
	mw.Close()
	r := e.do(t, "POST", "/upload", buf.Bytes(), "Content-Type: "+mw.FormDataContentType())
	limited(r, "1")
	if files, _ := r.problem(t)["files"].([]any); len(files) != 2 {
		t.Errorf("problem %s: want the two files stored listed", r.body)
	}
}

// Room is asked as bytes arrive: an append past what the medium has room
// for keeps what fits and gets 507, and once room is made there the same
// upload continues at once.
func TestRoom(t *testing.T) {
	var mu sync.Mutex
	capacity := int64(100 << 10)
	var e *env
	e = newEnv(t, false, resumable.Config{
		// The medium: what it holds comes off its capacity.
		Room: func() (int64, bool) {
			mu.Lock()
			defer mu.Unlock()
			return capacity - storedBytes(t, e.dir), true
		},
	})
	// A declared length that does not fit now is refused at once.
	e.do(t, "POST", "/files/", nil, tus, fmt.Sprintf("Upload-Length: %d", 300<<10)).expect(t, 507)
	u := e.do(t, "POST", "/files/", nil, tus, "Upload-Defer-Length: 1").expect(t, 201).Header.Get("Location")
	r := e.do(t, "PATCH", u, struct{ io.Reader }{bytes.NewReader(make([]byte, 300<<10))},
		tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0")
	r.expect(t, 507)
	kept := atoi(t, r.Header.Get("Upload-Offset"))
	if kept <= 0 || kept > 100<<10 {
		t.Fatalf("kept %d bytes with room for %d", kept, 100<<10)
	}
	mu.Lock()
	capacity = 1 << 20 // room made on the medium: usable at once
	mu.Unlock()
	e.do(t, "PATCH", u, bytes.NewReader(make([]byte, 300<<10-kept)), tus, "Content-Type: application/offset+octet-stream",
		fmt.Sprintf("Upload-Offset: %d", kept), fmt.Sprintf("Upload-Length: %d", 300<<10)).expect(t, 204)
}
