package ferry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server"
	"github.com/ferryhq/ferry/server/stream"
)

// credentials are what a user gives for one origin: none of them may reach
// another. X-Trace is not a credential and goes everywhere.
func credentials() http.Header {
	return http.Header{
		"Authorization": {"Bearer s3cret"},
		"Cookie":        {"session=s3cret"},
		"X-Api-Key":     {"s3cret"},
		"Private-Token": {"s3cret"},
		"X-Auth-Token":  {"s3cret"},
		"X-Trace":       {"t-1"},
	}
}

// witness records what requests reached a server with a credential.
type witness struct {
	mu       sync.Mutex
	requests int
	traced   int
	leaks    []string
}

func (w *witness) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.requests++
		if r.Header.Get("X-Trace") != "" {
			w.traced++
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if strings.Contains(v, "s3cret") {
					w.leaks = append(w.leaks, r.Method+" "+r.URL.Path+" "+k)
				}
			}
		}
		w.mu.Unlock()
		next.ServeHTTP(rw, r)
	})
}

// check fails t if a credential reached the server, or if it saw no
// request at all (the test would then prove nothing).
func (w *witness) check(t *testing.T, what string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.requests == 0 {
		t.Fatalf("%s saw no request", what)
	}
	if len(w.leaks) > 0 {
		t.Errorf("%s received credentials: %s", what, strings.Join(w.leaks, ", "))
	}
	if w.traced == 0 {
		t.Errorf("%s never received the X-Trace header, which is no credential", what)
	}
}

// credited reports whether the server saw the credentials at least once.
func (w *witness) credited() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.leaks) > 0
}

// redirector answers every request with a redirect to target + the path.
func redirector(t *testing.T, target string, w *witness) string {
	ts := httptest.NewServer(w.wrap(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, target+r.URL.Path, http.StatusFound)
	})))
	t.Cleanup(ts.Close)
	return ts.URL
}

// A download redirected to another origin (here another port of the same
// host, which net/http alone would still trust) leaves the credentials
// behind, in the probe and in every segment's request.
func TestDownloadRedirectDropsCredentials(t *testing.T) {
	for _, conns := range []int{1, 4} {
		t.Run(fmt.Sprint("x", conns), func(t *testing.T) {
			var origin, cdn witness
			srv := ferrytest.NewServer(t, ferrytest.Size(4<<20), ferrytest.Handler(cdn.wrap))
			start := redirector(t, srv.URL, &origin)
			res, _, err := download(t, mustSession(t, testConfig(false)), ferry.DownloadRequest{
				URL: start + "/file", Path: filepath.Join(t.TempDir(), "f"), Header: credentials(), Connections: conns})
			if err != nil {
				t.Fatal(err)
			}
			if res.Size != 4<<20 {
				t.Fatalf("size %d", res.Size)
			}
			if !origin.credited() {
				t.Error("the origin the credentials are for never got them")
			}
			cdn.check(t, "the redirect's target")
		})
	}
}

// The upload's URL, named by the server's Location, is on another origin:
// the appends, offset checks and concatenation parts sent there carry no
// credentials.
func TestUploadLocationOnAnotherOriginGetsNoCredentials(t *testing.T) {
	for _, tc := range []struct {
		name  string
		proto ferry.Protocol
		conns int
	}{
		{"tus", ferry.ProtocolTus, 1},
		{"tus parallel", ferry.ProtocolTus, 4},
		{"ietf", ferry.ProtocolIETF, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := server.New(server.Config{Root: t.TempDir(), Uploads: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			var origin, storage witness
			// The storage host answers the appends; the first of them is
			// cut, so the client asks it for the offset (HEAD) too.
			var cut sync.Once
			store := httptest.NewServer(storage.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPatch {
					cut.Do(func() { r.Body = &cutBody{r: r.Body, left: 1 << 20} })
				}
				srv.ServeHTTP(w, r)
			})))
			t.Cleanup(store.Close)
			storeHost := strings.TrimPrefix(store.URL, "http://")
			// The API host creates uploads and names them on the storage
			// host, as a CDN-fronted tus service does.
			api := httptest.NewServer(origin.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Host = storeHost
				srv.ServeHTTP(w, r)
			})))
			t.Cleanup(api.Close)
			path, sum := makeFile(t, 12<<20)
			res, _, err := runUpload(t, mustSession(t, uploadConfig()), ferry.UploadRequest{
				URL: api.URL + "/files/", Path: path, Protocol: tc.proto, Connections: tc.conns, Header: credentials(), SHA256: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.SHA256 != sum || !strings.HasPrefix(res.Location, store.URL) {
				t.Fatalf("result %+v", res)
			}
			if !origin.credited() {
				t.Error("the API host never got the credentials")
			}
			storage.check(t, "the storage host")
		})
	}
}

// A resumable stream whose Location is on another origin resumes there
// without the credentials.
func TestStreamLocationOnAnotherOriginGetsNoCredentials(t *testing.T) {
	h, err := stream.New(stream.Config{Dir: t.TempDir(), Processors: counting, AckEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	var origin, storage witness
	store := httptest.NewServer(storage.wrap(h))
	t.Cleanup(store.Close)
	// The API host names the stream on the storage host.
	api := httptest.NewServer(origin.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&locationOn{ResponseWriter: w, base: store.URL}, r)
	})))
	t.Cleanup(api.Close)
	proxy := ferrytest.NewProxy(t, strings.TrimPrefix(api.URL, "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs := newReplies()
	task, err := mustSession(t, testConfig(false)).Stream(ctx, ferry.StreamRequest{
		URL: proxy.URL + "/stream/s.bin", Resumable: true, Header: credentials(), OnReply: rs.add})
	if err != nil {
		t.Fatal(err)
	}
	input := ferrytest.Bytes(256<<10, 201)
	task.Write(input[:4096])
	rs.waitFor(t, "about the first bytes", func(e ferry.ReplyEvent) bool { return e.Type == "got" })
	proxy.Cut() // the stream continues at its Location, on the storage host
	task.Write(input[4096:])
	task.Close()
	res, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.SHA256 != ferrytest.SHA256Hex(input) {
		t.Fatalf("result %+v", res)
	}
	if !origin.credited() {
		t.Error("the API host never got the credentials")
	}
	storage.check(t, "the storage host")
}

// A playlist on one host naming variants, segments and keys on a CDN host
// sends the credentials only to the playlist's host.
func TestHLSOtherHostsGetNoCredentials(t *testing.T) {
	var origin, cdn witness
	o := newHLSOrigin(t, false)
	key := []byte("0123456789abcdef")
	o.put("/cdn/key", key)
	iv := make([]byte, 16)
	iv[15] = 1
	segs := o.vod("/cdn/v", 4, func(i int) string {
		if i == 0 {
			return `#EXT-X-KEY:METHOD=AES-128,URI="/cdn/key",IV=0x00000000000000000000000000000001` + "\n"
		}
		return ""
	})
	for i, b := range segs {
		o.put(fmt.Sprintf("/cdn/v/seg%d.ts", i), encrypt(key, iv, b))
	}
	cdnSrv := httptest.NewServer(cdn.wrap(http.HandlerFunc(o.serve)))
	t.Cleanup(cdnSrv.Close)
	master := fmt.Sprintf("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n%s/cdn/v/index.m3u8\n", cdnSrv.URL)
	originSrv := httptest.NewServer(origin.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(master))
	})))
	t.Cleanup(originSrv.Close)
	_, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: originSrv.URL + "/master.m3u8", Dir: t.TempDir(), Header: credentials()})
	if err != nil {
		t.Fatal(err)
	}
	if !origin.credited() {
		t.Error("the playlist's host never got the credentials")
	}
	cdn.check(t, "the CDN host")
}

// locationOn makes the relative Locations of a response, interim ones too,
// absolute URLs under base.
type locationOn struct {
	http.ResponseWriter
	base string
}

func (l *locationOn) WriteHeader(code int) {
	if loc := l.Header().Get("Location"); strings.HasPrefix(loc, "/") {
		l.Header().Set("Location", l.base+loc)
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *locationOn) Unwrap() http.ResponseWriter { return l.ResponseWriter }

// Credentials the user put in the URL stay usable where references
// inherit them (a relative redirect, a playlist's relative segments); a
// server cannot add credentials of its own.
func TestUserinfoOfTheTaskURL(t *testing.T) {
	o := newHLSOrigin(t, false)
	o.vod("/v", 2, nil)
	var auths atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == "me" && p == "pw" {
			auths.Add(1)
		}
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/v/seg0.ts", http.StatusFound)
			return
		}
		o.serve(w, r)
	}))
	defer ts.Close()
	withUser := strings.Replace(ts.URL, "http://", "http://me:pw@", 1)
	if _, _, err := download(t, mustSession(t, testConfig(false)), ferry.DownloadRequest{URL: withUser + "/moved", Path: filepath.Join(t.TempDir(), "f")}); err != nil {
		t.Fatalf("a relative redirect of a URL with credentials: %v", err)
	}
	if _, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: withUser + "/v/index.m3u8", Dir: t.TempDir()}); err != nil {
		t.Fatalf("a playlist at a URL with credentials: %v", err)
	}
	if auths.Load() < 4 {
		t.Errorf("%d requests carried the URL's credentials", auths.Load())
	}
	// An error names the URL without its password.
	_, _, err := download(t, mustSession(t, failingConfig(1)), ferry.DownloadRequest{URL: withUser + "/missing", Path: filepath.Join(t.TempDir(), "g")})
	if err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("err = %v, want one that does not show the password", err)
	}
}
