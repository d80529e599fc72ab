package ferry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server"
)

// uploadOrigin runs a real ferry origin accepting uploads at /files/ and
// /upload, behind wrap if given.
func uploadOrigin(t *testing.T, cfg server.Config, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	cfg.Root = t.TempDir()
	cfg.Uploads = t.TempDir()
	return serveOrigin(t, cfg, wrap)
}

// serveOrigin runs a real ferry origin with cfg, behind wrap if given, and
// returns its URL.
func serveOrigin(t *testing.T, cfg server.Config, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// makeFile writes n pseudo-random bytes to a temp file and returns its path
// and sha-256.
func makeFile(t *testing.T, n int64) (string, string) {
	t.Helper()
	src := ferrytest.NewServer(t, ferrytest.Size(n))
	path := filepath.Join(t.TempDir(), "data.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, io.NewSectionReader(src.Content(1), 0, n)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path, src.SHA256()
}

// storedSHA256 fetches a finished upload from its location.
func storedSHA256(t *testing.T, location string, header http.Header) string {
	t.Helper()
	req, _ := http.NewRequest("GET", location, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", location, resp.Status)
	}
	h := sha256.New()
	io.Copy(h, resp.Body)
	return hex.EncodeToString(h.Sum(nil))
}

func uploadConfig() ferry.Config {
	cfg := testConfig(false)
	cfg.Ephemeral = true
	return cfg
}

func runUpload(t *testing.T, s *ferry.Session, req ferry.UploadRequest) (*ferry.Result, []ferry.Event, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	task, err := s.Upload(ctx, req)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	var events []ferry.Event
	for ev := range task.Events() {
		events = append(events, ev)
	}
	res, err := task.Wait(ctx)
	return res, events, err
}

func TestUploadProtocols(t *testing.T) {
	path, sum := makeFile(t, 12<<20)
	for _, tc := range []struct {
		name  string
		proto ferry.Protocol
		conns int
	}{
		{"auto", ferry.ProtocolAuto, 0},
		{"tus", ferry.ProtocolTus, 0},
		{"tus parallel", ferry.ProtocolTus, 4},
		{"ietf", ferry.ProtocolIETF, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := uploadOrigin(t, server.Config{}, nil)
			res, events, err := runUpload(t, mustSession(t, uploadConfig()),
				ferry.UploadRequest{URL: base + "/files/", Path: path, Protocol: tc.proto, Connections: tc.conns, SHA256: true})
			if err != nil {
				t.Fatal(err)
			}
			if tc.proto == ferry.ProtocolIETF {
				// The draft's server answers the creation with a 104 that
				// says where the upload is, before it reads a byte.
				var interim []ferry.InterimEvent
				for _, ev := range events {
					if e, ok := ev.(ferry.InterimEvent); ok {
						interim = append(interim, e)
					}
				}
				if len(interim) == 0 || interim[0].StatusCode != 104 || interim[0].Header.Get("Location") == "" {
					t.Errorf("interim events %+v, want the creation's 104 with its Location", interim)
				}
			}
			if res.SHA256 != sum || res.Size != 12<<20 || res.Location == "" {
				t.Fatalf("result %+v", res)
			}
			if want := tc.proto; want != ferry.ProtocolAuto && res.Protocol != want {
				t.Errorf("protocol %s, want %s", res.Protocol, want)
			}
			if got := storedSHA256(t, res.Location, nil); got != sum {
				t.Fatalf("the server stored sha %s, want %s", got, sum)
			}
		})
	}
}

func TestUploadMultipart(t *testing.T) {
	path, sum := makeFile(t, 3<<20)
	base := uploadOrigin(t, server.Config{}, nil)
	res, _, err := runUpload(t, mustSession(t, uploadConfig()),
		ferry.UploadRequest{URL: base + "/upload", Path: path, Protocol: ferry.ProtocolMultipart})
	if err != nil {
		t.Fatal(err)
	}
	var reply any
	if err := json.Unmarshal(res.Response, &reply); err != nil {
		t.Fatalf("multipart reply %q: %v", res.Response, err)
	}
	if !strings.Contains(string(res.Response), sum) {
		t.Fatalf("the server's reply does not carry the file's sha-256 %s: %s", sum, res.Response)
	}
}

// A connection cut mid-append is resumed from the offset the server kept.
func TestUploadSurvivesCutConnections(t *testing.T) {
	for _, conns := range []int{1, 4} {
		path, sum := makeFile(t, 12<<20)
		var cuts atomic.Int32
		base := uploadOrigin(t, server.Config{}, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPatch && cuts.Add(1) <= 2 {
					r.Body = &cutBody{r: r.Body, left: 1 << 20}
				}
				next.ServeHTTP(w, r)
			})
		})
		res, events, err := runUpload(t, mustSession(t, uploadConfig()),
			ferry.UploadRequest{URL: base + "/files/", Path: path, Protocol: ferry.ProtocolTus, Connections: conns})
		if err != nil {
			t.Fatalf("connections %d: %v", conns, err)
		}
		if count[ferry.RetryEvent](events) < 1 {
			t.Errorf("connections %d: no retry, the fault was not met", conns)
		}
		if got := storedSHA256(t, res.Location, nil); got != sum {
			t.Fatalf("connections %d: stored sha %s, want %s", conns, got, sum)
		}
	}
}

// cutBody ends a request body with an error after left bytes, as a dropped
// connection does.
type cutBody struct {
	r    io.ReadCloser
	left int
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	p = p[:min(len(p), c.left)]
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}

func (c *cutBody) Close() error { return c.r.Close() }

// An upload stopped mid-way continues in a new session from what the
// server acknowledged, through the state directory.
func TestUploadResumesAcrossSessions(t *testing.T) {
	for _, conns := range []int{1, 4} {
		path, sum := makeFile(t, 16<<20)
		base := uploadOrigin(t, server.Config{}, nil)
		cfg := testConfig(false)
		cfg.StateDir = t.TempDir()
		slow := cfg
		slow.RateLimit = 8 << 20
		req := ferry.UploadRequest{URL: base + "/files/", Path: path, Protocol: ferry.ProtocolTus, Connections: conns}
		ctx, cancel := context.WithCancel(context.Background())
		task, err := mustSession(t, slow).Upload(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		waitProgress(t, task, 6<<20)
		cancel()
		<-task.Done()

		res, _, err := runUpload(t, mustSession(t, cfg), req)
		if err != nil {
			t.Fatalf("connections %d: %v", conns, err)
		}
		if res.ResumedFrom < 4<<20 || res.Uploaded > res.Size-res.ResumedFrom {
			t.Errorf("connections %d: resumed from %d, sent %d of %d", conns, res.ResumedFrom, res.Uploaded, res.Size)
		}
		if got := storedSHA256(t, res.Location, nil); got != sum {
			t.Fatalf("connections %d: stored sha %s, want %s", conns, got, sum)
		}
		if entries, _ := os.ReadDir(filepath.Join(cfg.StateDir, "uploads")); len(entries) != 0 {
			t.Errorf("connections %d: the finished upload left %d state files", conns, len(entries))
		}
	}
}

func TestUploadToken(t *testing.T) {
	path, _ := makeFile(t, 1<<20)
	base := uploadOrigin(t, server.Config{Token: "s3cret"}, nil)
	_, _, err := runUpload(t, mustSession(t, uploadConfig()), ferry.UploadRequest{URL: base + "/files/", Path: path, Protocol: ferry.ProtocolTus})
	if se, ok := errors.AsType[*ferry.StatusError](err); !ok || se.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the token: %v, want 401", err)
	}
	auth := http.Header{"Authorization": {"Bearer s3cret"}}
	res, _, err := runUpload(t, mustSession(t, uploadConfig()), ferry.UploadRequest{URL: base + "/files/", Path: path, Protocol: ferry.ProtocolTus, Header: auth})
	if err != nil || res.Location == "" {
		t.Fatalf("with the token: %v", err)
	}
}

func TestUploadInvalidRequests(t *testing.T) {
	s := mustSession(t, uploadConfig())
	for _, req := range []ferry.UploadRequest{
		{URL: "ftp://x/", Path: "p"},
		{URL: "http://x/files/", Path: filepath.Join(t.TempDir(), "missing")},
		{URL: "http://x/files/", Path: t.TempDir()},
		{URL: "http://x/files/", Path: "upload_test.go", Protocol: "carrier-pigeon"},
	} {
		if _, err := s.Upload(context.Background(), req); !errors.Is(err, ferry.ErrInvalidRequest) {
			t.Errorf("Upload(%+v) = %v, want ErrInvalidRequest", req, err)
		}
	}
}

// Every append carries a digest the server checks (tus Upload-Checksum, or
// Content-Digest in the draft), and the creation carries the whole file's
// Repr-Digest, so a corrupted byte anywhere is caught.
func TestUploadSendsDigests(t *testing.T) {
	path, _ := makeFile(t, 6<<20)
	for _, proto := range []ferry.Protocol{ferry.ProtocolTus, ferry.ProtocolIETF} {
		var creations, withRepr, appends, withDigest atomic.Int32
		base := uploadOrigin(t, server.Config{}, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.Method {
				case http.MethodPost:
					creations.Add(1)
					if r.Header.Get("Repr-Digest") != "" {
						withRepr.Add(1)
					}
				case http.MethodPatch:
					appends.Add(1)
					if r.Header.Get("Upload-Checksum") != "" || r.Header.Get("Content-Digest") != "" {
						withDigest.Add(1)
					}
				}
				next.ServeHTTP(w, r)
			})
		})
		if _, _, err := runUpload(t, mustSession(t, uploadConfig()), ferry.UploadRequest{URL: base + "/files/", Path: path, Protocol: proto}); err != nil {
			t.Fatal(err)
		}
		if creations.Load() != withRepr.Load() || appends.Load() == 0 || appends.Load() != withDigest.Load() {
			t.Errorf("%s: %d/%d creations with Repr-Digest, %d/%d appends with a digest", proto,
				withRepr.Load(), creations.Load(), withDigest.Load(), appends.Load())
		}
	}
}

// With KeepState, a finished upload run again finds itself complete on the
// server and sends nothing (as a daemon killed before recording the result
// does); ForgetUpload ends that, and the next run is a new upload.
func TestUploadKeepState(t *testing.T) {
	for _, conns := range []int{1, 3} {
		var posts atomic.Int64
		origin := uploadOrigin(t, server.Config{}, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					posts.Add(1)
				}
				next.ServeHTTP(w, r)
			})
		})
		path, sum := makeFile(t, 6<<20)
		cfg := uploadConfig()
		cfg.Ephemeral, cfg.StateDir = false, t.TempDir() // state kept between runs
		s := mustSession(t, cfg)
		req := ferry.UploadRequest{URL: origin + "/files/", Path: path, Protocol: ferry.ProtocolTus, Connections: conns, SHA256: true, KeepState: true}
		first, _, err := runUpload(t, s, req)
		if err != nil {
			t.Fatal(err)
		}
		made := posts.Load()
		again, _, err := runUpload(t, s, req)
		if err != nil {
			t.Fatal(err)
		}
		if again.Location != first.Location || again.Uploaded != 0 || posts.Load() != made || again.SHA256 != sum {
			t.Errorf("x%d: the run again uploaded %d bytes to %s (first %s), %d POSTs after %d", conns, again.Uploaded, again.Location, first.Location, posts.Load(), made)
		}
		if err := s.ForgetUpload(req); err != nil {
			t.Fatal(err)
		}
		third, _, err := runUpload(t, s, req)
		if err != nil {
			t.Fatal(err)
		}
		if third.Location == first.Location {
			t.Errorf("x%d: after ForgetUpload the upload went to the old location", conns)
		}
	}
}

// A tus metadata key that would change how Upload-Metadata reads (a comma
// starts another pair, a space ends the key) or is no header text is
// refused before any request: "x,filename" must not set the file's name.
func TestUploadMetadataKeysChecked(t *testing.T) {
	var requests atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusForbidden)
	}))
	defer ts.Close()
	path, _ := makeFile(t, 1000)
	s := mustSession(t, failingConfig(1))
	for _, key := range []string{"", "a b", "x,filename", "a\r\nb", "tab\t", "é"} {
		_, err := s.Upload(context.Background(), ferry.UploadRequest{URL: ts.URL + "/files/", Path: path,
			Protocol: ferry.ProtocolTus, Metadata: map[string]string{key: "evil"}})
		if !errors.Is(err, ferry.ErrInvalidRequest) {
			t.Errorf("metadata key %q: %v, want ErrInvalidRequest", key, err)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}
