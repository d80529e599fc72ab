package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
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

// listening waits for ferry serve to log where it listens and returns the
// base URL.
func listening(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`url=(\S+)`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line in the log:\n%s", logs)
		}
	}
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
			base := listening(t, logs)
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
		{"--uploads", t.TempDir(), "--creation-burst", "0"},
		{"--uploads", t.TempDir(), "--creation-rate", "-1"},
	} {
		// A server that starts instead is stopped, and fails the test.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if code := run(ctx, append([]string{"serve", "--root", root, "--addr", "127.0.0.1:0"}, args...), nil, io.Discard, io.Discard); code != exitUsage {
			t.Errorf("serve %v exited %d, want %d", args, code, exitUsage)
		}
		cancel()
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	logs := &syncBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--root", root, "--uploads", t.TempDir(), "--addr", "127.0.0.1:0", "--max-storage", "1M"}, nil, io.Discard, logs)
	}()
	base := listening(t, logs)
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
	stop()
	select {
	case <-exit:
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
}
