package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ferry serve logs where it listens, serves the root, and exits 0 when its
// context ends (what SIGTERM does in main).
func TestServeCommand(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		name := map[bool]string{false: "h2c", true: "tls"}[tlsOn]
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			os.WriteFile(filepath.Join(root, "a.txt"), []byte("abcdef"), 0o644)
			args := []string{"serve", "--root", root, "--addr", "127.0.0.1:0"}
			if tlsOn {
				args = append(args, "--tls-self-signed")
			}
			ctx, stop := context.WithCancel(context.Background())
			logs := &syncBuffer{}
			exit := make(chan int, 1)
			go func() { exit <- run(ctx, args, nil, io.Discard, logs) }()

			var base string
			re := regexp.MustCompile(`url=(\S+)`)
			for deadline := time.Now().Add(10 * time.Second); base == ""; time.Sleep(10 * time.Millisecond) {
				if m := re.FindStringSubmatch(logs.String()); m != nil {
					base = m[1]
				} else if time.Now().After(deadline) {
					t.Fatalf("no listening line in the log:\n%s", logs)
				}
			}
			client := &http.Client{Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
				ForceAttemptHTTP2: true,
			}}
			req, _ := http.NewRequest("GET", base+"/a.txt", nil)
			req.Header.Set("Range", "bytes=2-")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 206 || string(body) != "cdef" || resp.Header.Get("ETag") == "" {
				t.Fatalf("GET with Range: %d %q etag %q", resp.StatusCode, body, resp.Header.Get("ETag"))
			}
			if tlsOn && resp.ProtoMajor != 2 {
				t.Errorf("TLS answered over %s, want HTTP/2", resp.Proto)
			}
			client.CloseIdleConnections()
			stop()
			select {
			case code := <-exit:
				if code != exitOK {
					t.Fatalf("serve exited %d after shutdown, want 0; log:\n%s", code, logs)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("serve did not shut down")
			}
		})
	}
}

// startServeCmd runs `ferry serve args...` on a free port until the test
// ends and returns its base URL.
func startServeCmd(t *testing.T, args ...string) string {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), nil, io.Discard, logs)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-exit:
		case <-time.After(15 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	re := regexp.MustCompile(`url=(\S+)`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-exit:
			t.Fatalf("serve exited %d:\n%s", code, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line in the log:\n%s", logs)
		}
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// ferry serve hides the daemon's state directory and dot files below its
// root, unless --dotfiles, and refuses a root inside its uploads.
func TestServeHidesState(t *testing.T) {
	root := t.TempDir()
	t.Setenv("XDG_STATE_HOME", filepath.Join(root, "state"))
	for name, data := range map[string]string{"state/ferry/ferry.db": "tasks", ".env": "TOKEN=1", "a.txt": "a"} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755)
		os.WriteFile(filepath.Join(root, name), []byte(data), 0o644)
	}
	base := startServeCmd(t, "--root", root)
	for path, want := range map[string]int{"/a.txt": 200, "/state/ferry/ferry.db": 404, "/.env": 404} {
		if got := getStatus(t, base+path); got != want {
			t.Errorf("GET %s: %d, want %d", path, got, want)
		}
	}
	base = startServeCmd(t, "--root", root, "--dotfiles")
	if got := getStatus(t, base+"/.env"); got != 200 {
		t.Errorf("GET /.env with --dotfiles: %d, want 200", got)
	}
	if code := run(t.Context(), []string{"serve", "--root", filepath.Join(root, "state", "ferry")}, nil, io.Discard, io.Discard); code != exitUsage {
		t.Errorf("serve with the root inside the daemon's state: exit %d, want %d", code, exitUsage)
	}
}

// The limits on what clients send are flags: a stalled body is cut at
// --body-idle-timeout, a header past --max-header-size gets 431, and a
// client address holds --max-uploads-per-client requests with content.
func TestServeLimitFlags(t *testing.T) {
	base := startServeCmd(t, "--root", t.TempDir(), "--uploads", t.TempDir(),
		"--body-idle-timeout", "20ms", "--stream-idle-timeout", "1h", "--max-header-size", "4K", "--max-uploads-per-client", "1")
	addr := strings.TrimPrefix(base, "http://")

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n--b\r\n")
	if got, err := io.ReadAll(c); err != nil {
		t.Errorf("a stalled form: %v (read %.40q), want the connection closed", err, got)
	}

	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 8<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 431 {
		t.Errorf("an 8 KiB header: %v %v, want 431", resp, err)
	} else {
		resp.Body.Close()
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	first := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post(base+"/stream/one", "application/octet-stream", pr)
		if err != nil {
			t.Error(err)
		}
		first <- resp
	}()
	if resp := <-first; resp == nil || resp.StatusCode != 201 {
		t.Fatalf("the first stream: %v", resp)
	} else {
		defer resp.Body.Close()
	}
	resp, err := http.Post(base+"/stream/two", "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a second stream from the same address: %s, want 429", resp.Status)
	}
}

// The upload limits of ferry serve: bad values are usage errors, and
// --max-storage is what the server enforces.
func TestServeUploadLimits(t *testing.T) {
	root := t.TempDir()
	for _, args := range [][]string{
		{"--max-storage", "1M"},
		{"--creation-rate", "5"},
		{"--uploads", t.TempDir(), "--max-storage", "lots"},
		{"--uploads", t.TempDir(), "--max-storage", "1e30"},
		{"--uploads", t.TempDir(), "--max-storage", "nan"},
		{"--uploads", t.TempDir(), "--max-upload-size", "inf"},
		{"--uploads", t.TempDir(), "--creation-burst", "-1"},
		{"--uploads", t.TempDir(), "--creation-rate", "-1"},
	} {
		// A server that starts instead is stopped, and fails the test.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if code := run(ctx, append([]string{"serve", "--root", root, "--addr", "127.0.0.1:0"}, args...), nil, io.Discard, io.Discard); code != exitUsage {
			t.Errorf("serve %v exited %d, want %d", args, code, exitUsage)
		}
		cancel()
	}

	base := startServeCmd(t, "--root", root, "--uploads", t.TempDir(), "--max-storage", "1M")
	for length, want := range map[string]int{"2097152": 507, "1000": 201} {
		req, _ := http.NewRequest("POST", base+"/files/", nil)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Length", length)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST of %s bytes under --max-storage 1M: %d, want %d", length, resp.StatusCode, want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

// 0 turns off every limit flag of ferry serve (--creation-burst 0: no
// burst, one creation at a time at the rate; --max-header-size 0: no bound
// but net/http's own, 1 MiB), and a negative limit is a usage error.
func TestServeZeroIsOff(t *testing.T) {
	root := t.TempDir()
	base := startServeCmd(t, "--root", root, "--uploads", t.TempDir(), "--creation-burst", "0", "--creation-rate", "0.001",
		"--max-header-size", "0", "--header-timeout", "0", "--body-idle-timeout", "0", "--stream-idle-timeout", "0",
		"--max-uploads-per-client", "0", "--max-storage", "0", "--max-upload-size", "0", "--upload-expiry", "0")
	for i, want := range []int{201, 429} {
		req, _ := http.NewRequest("POST", base+"/files/", nil)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Length", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("creation %d with --creation-burst 0: %d, want %d", i, resp.StatusCode, want)
		}
	}
	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("b", 200<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("a 200 KiB header with --max-header-size 0: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	http.DefaultClient.CloseIdleConnections()

	for _, flag := range []string{"--creation-burst", "--max-uploads-per-client", "--header-timeout", "--body-idle-timeout",
		"--stream-idle-timeout", "--upload-expiry", "--max-header-size"} {
		v := "-1"
		if strings.HasSuffix(flag, "timeout") || flag == "--upload-expiry" {
			v = "-1s"
		}
		// A server that starts instead is stopped, and fails the test.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if code := run(ctx, []string{"serve", "--root", root, "--uploads", t.TempDir(), "--addr", "127.0.0.1:0", flag, v}, nil, io.Discard, io.Discard); code != exitUsage {
			t.Errorf("serve %s %s exited %d, want %d", flag, v, code, exitUsage)
		}
		cancel()
	}
}
