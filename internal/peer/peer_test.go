package peer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain lets the test binary play a server: with PEER_TEST_SERVE=addr
// it serves /healthz on addr and logs a line.
func TestMain(m *testing.M) {
	if addr := os.Getenv("PEER_TEST_SERVE"); addr != "" {
		fmt.Println("serving on", addr)
		http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
		if err := http.ListenAndServe(addr, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func TestNginxConfigRender(t *testing.T) {
	cfg := NginxConfig{
		Root:      "/srv/data",
		Locations: []Location{{Path: "/slow/", LimitRate: "20m"}, {Path: "/other", Alias: "/srv/other"}, {Path: "/capped/", LimitRate: "2m", SendfileMaxChunk: "64k"}},
		AccessLog: true,
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	got := cfg.render("/tmp/ng", "127.0.0.1:8080", true)
	for _, want := range []string{
		"daemon off;\n",
		"\nuser root root;\n",
		"\npid /tmp/ng/nginx.pid;\n",
		"\nerror_log /tmp/ng/error.log warn;\n",
		"\n    access_log /tmp/ng/access.log ferry;\n",
		`'range="$http_range" if_range="$http_if_range" $request_time';`,
		"\n    proxy_temp_path /tmp/ng/proxy;\n",
		"\n        listen 127.0.0.1:8080;\n        root /srv/data;\n",
		"\n        location = /healthz { return 200 \"ok\\n\"; }\n        location / { }\n",
		"\n        location /slow/ {\n            alias /srv/data/;\n            limit_rate 20m;\n        }\n",
		"\n        location /other {\n            alias /srv/other;\n        }\n",
		"\n        location /capped/ {\n            alias /srv/data/;\n            limit_rate 2m;\n            sendfile_max_chunk 64k;\n        }\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	if open, closed := strings.Count(got, "{"), strings.Count(got, "}"); open != closed {
		t.Errorf("%d { but %d }:\n%s", open, closed, got)
	}

	plain := NginxConfig{Root: "/srv/data"}.render("/tmp/ng", "[::1]:80", false)
	for _, bad := range []string{"user ", "log_format", "limit_rate", "sendfile_max_chunk", "alias", "access.log"} {
		if strings.Contains(plain, bad) {
			t.Errorf("config without locations, access log or root has %q:\n%s", bad, plain)
		}
	}
	if !strings.Contains(plain, "\n    access_log off;\n") || !strings.Contains(plain, "listen [::1]:80;") {
		t.Errorf("plain config:\n%s", plain)
	}
}

func TestNginxConfigValidate(t *testing.T) {
	for _, cfg := range []NginxConfig{
		{},
		{Root: "/srv/my data"},
		{Root: "/srv/data;"},
		{Root: "/srv/$data"},
		{Root: "/srv", Locations: []Location{{Path: "slow/"}}},
		{Root: "/srv", Locations: []Location{{Path: "/"}}},
		{Root: "/srv", Locations: []Location{{Path: "/slow/", LimitRate: "20m; evil"}}},
		{Root: "/srv", Locations: []Location{{Path: "/a/", Alias: "/b{"}}},
		{Root: "/srv", Locations: []Location{{Path: "/a/", SendfileMaxChunk: "64k;"}}},
	} {
		if err := cfg.validate(); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// chacha8File returns MakeFile's bytes for seed, made in memory.
func chacha8File(seed uint64, size int) []byte {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	b := make([]byte, size)
	rand.NewChaCha8(key).Read(b)
	return b
}

func TestMakeFile(t *testing.T) {
	dir := t.TempDir()
	const size = 3<<20 + 12345 // several buffers and a short last one
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	sumA, err := MakeFile(a, size, 42)
	if err != nil {
		t.Fatal(err)
	}
	sumB, err := MakeFile(b, size, 42)
	if err != nil {
		t.Fatal(err)
	}
	sumC, err := MakeFile(c, size, 43)
	if err != nil {
		t.Fatal(err)
	}
	if sumA != sumB {
		t.Errorf("same seed, different sums %s and %s", sumA, sumB)
	}
	if sumA == sumC {
		t.Errorf("seeds 42 and 43 made the same file")
	}
	data, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != size {
		t.Fatalf("file has %d bytes, want %d", len(data), size)
	}
	h := sha256.Sum256(data)
	if got := hex.EncodeToString(h[:]); got != sumA {
		t.Errorf("MakeFile returned sha256 %s, the file has %s", sumA, got)
	}
	if fs, err := FileSHA256(a); err != nil || fs != sumA {
		t.Errorf("FileSHA256 = %s, %v; want %s", fs, err, sumA)
	}
	// The stream does not depend on the buffer size: a prefix of a long
	// file is the short file.
	if want := chacha8File(42, size); string(want) != string(data) {
		t.Errorf("MakeFile's bytes are not ChaCha8's stream for the seed")
	}
	short := filepath.Join(dir, "short")
	sumShort, err := MakeFile(short, 1000, 42)
	if err != nil {
		t.Fatal(err)
	}
	hs := sha256.Sum256(data[:1000])
	if sumShort != hex.EncodeToString(hs[:]) {
		t.Errorf("a 1000-byte file is not the first 1000 bytes of a long one")
	}

	empty := filepath.Join(dir, "empty")
	sumEmpty, err := MakeFile(empty, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; sumEmpty != want {
		t.Errorf("empty file sha256 %s, want %s", sumEmpty, want)
	}
}

func TestEnsureFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.bin")
	sum, made, err := EnsureFile(path, 5000, 7)
	if err != nil || !made {
		t.Fatalf("first EnsureFile: made %v, %v", made, err)
	}
	if _, err := os.Stat(path + ".tmp"); err == nil {
		t.Errorf(".tmp left behind")
	}
	sum2, made, err := EnsureFile(path, 5000, 99)
	if err != nil || made || sum2 != sum {
		t.Errorf("second EnsureFile: sum %s made %v err %v; want %s, reused", sum2, made, err, sum)
	}
	// A file of another size is made again.
	sum3, made, err := EnsureFile(path, 6000, 7)
	if err != nil || !made || sum3 == sum {
		t.Errorf("EnsureFile with a new size: sum %s made %v err %v", sum3, made, err)
	}
}

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on the free port %d: %v", port, err)
	}
	l.Close()
}

func TestWaitHealthy(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitHealthy(ctx, srv.URL+"/healthz"); err != nil {
		t.Fatal(err)
	}

	// A server that never gets healthy: the error says why ctx ended and
	// what the last poll saw.
	cause := errors.New("gave up")
	ctx, cancel2 := context.WithTimeoutCause(context.Background(), 300*time.Millisecond, cause)
	defer cancel2()
	bad := httptest.NewServer(http.NotFoundHandler())
	defer bad.Close()
	err := WaitHealthy(ctx, bad.URL)
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "404") {
		t.Errorf("WaitHealthy on a 404 server: %v", err)
	}
}

func TestDebianPackage(t *testing.T) {
	for name, want := range map[string]string{"nginx": "nginx-light", "aria2c": "aria2", "curl": "curl"} {
		if got := DebianPackage(name); got != want {
			t.Errorf("DebianPackage(%q) = %q, want %q", name, got, want)
		}
	}
	if _, err := FindBinary("ferry-no-such-binary"); err == nil {
		t.Errorf("FindBinary found a binary that does not exist")
	}
}

func TestServerStartFailure(t *testing.T) {
	// "false" exits at once: the start is tried again and then fails,
	// saying it exited, and leaves no directory behind.
	bin, err := FindBinary("false")
	if err != nil {
		t.Skip(err)
	}
	var dirs []string
	_, err = startServer(context.Background(), "false", "http", "", func(dir, addr string) (*process, []string, error) {
		dirs = append(dirs, dir)
		p, err := startProcess(filepath.Join(dir, "log"), bin)
		return p, []string{"log"}, err
	})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Errorf("startServer with a process that exits: %v", err)
	}
	if len(dirs) != startAttempts {
		t.Errorf("%d attempts, want %d", len(dirs), startAttempts)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left behind", d)
		}
	}
}

func TestServerStartStop(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s, err := startServer(context.Background(), "self", "http", "", func(dir, addr string) (*process, []string, error) {
		t.Setenv("PEER_TEST_SERVE", addr)
		p, err := startProcess(filepath.Join(dir, "serve.log"), self)
		return p, []string{"serve.log"}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("URL %s", s.URL)
	}
	if logs := s.Logs(); !strings.HasPrefix(logs, "serve.log:\nserving on 127.0.0.1:") {
		t.Errorf("Logs() = %q", logs)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if !s.proc.exited() {
		t.Errorf("still running after Stop")
	}
	if _, err := os.Stat(s.Dir); err == nil {
		t.Errorf("Stop left %s", s.Dir)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
