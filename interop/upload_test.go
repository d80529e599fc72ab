//go:build interop

package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// uploadFileSize is the file the upload peers send: big enough for
// several 5 MiB chunks and for a server checkpoint (16 MiB) mid-PATCH.
const uploadFileSize = 48 * MiB

// wantInterop is the Upload-Draft-Interop-Version tus-js-client 4.3.1
// sends for each protocol ("" for tus).
var wantInterop = map[string]string{"tus-v1": "", "ietf-draft-03": "5", "ietf-draft-05": "6"}

// TestTusJSClientToFerryServe uploads a file with tus-js-client 4.3.1 in
// each of its protocols, in one request, in chunks, with data in the
// creation request, and in four parallel parts concatenated by the server,
// and checks that ferry stored it byte for byte.
func TestTusJSClientToFerryServe(t *testing.T) {
	node := needTusJSClient(t)
	src, sum := fixture(t, "upload.bin", uploadFileSize)
	srv := startFerryUploads(t)
	for _, protocol := range []string{"tus-v1", "ietf-draft-03", "ietf-draft-05"} {
		for _, tc := range []struct {
			name string
			args []string
			// POSTs and PATCHes expected: -1 for "at least one"
			posts, patches int
		}{
			{"one-request", nil, 1, 1},
			{"chunks-5MiB", []string{"--chunk-size", strconv.Itoa(5 * MiB)}, 1, 10},
			{"data-during-creation", []string{"--chunk-size", strconv.Itoa(16 * MiB), "--data-during-creation"}, 1, 2},
			{"parallel-4", []string{"--parallel", "4"}, 5, 4},
		} {
			t.Run(protocol+"/"+tc.name, func(t *testing.T) {
				args := append([]string{"--file", src, "--endpoint", srv.URL + "/files/", "--protocol", protocol}, tc.args...)
				out, res := runTusJS(t, node, args...)
				if res.exitCode != 0 || out.Error != "" {
					t.Fatalf("tus-js-client failed: %s\n%s", out.Error, res)
				}
				t.Logf("tus-js-client %s: %s in %v; requests %v", protocol, out.URL, res.elapsed.Round(1e6), out.Requests)
				checkStored(t, srv, out.URL, uploadFileSize, sum)
				if want := wantInterop[protocol]; want == "" && len(out.Interop) > 0 || want != "" && !slices.Equal(out.Interop, []string{want}) {
					t.Errorf("tus-js-client sent Upload-Draft-Interop-Version %v, want %q", out.Interop, want)
				}
				posts, patches := 0, 0
				for _, r := range out.Requests {
					switch {
					case strings.HasPrefix(r, "POST 201"):
						posts++
					case strings.HasPrefix(r, "PATCH 204"):
						patches++
					default:
						t.Errorf("unexpected response %q", r)
					}
				}
				if posts != tc.posts || patches != tc.patches {
					t.Errorf("%d POST 201 and %d PATCH 204, want %d and %d: %v", posts, patches, tc.posts, tc.patches, out.Requests)
				}
			})
		}
	}
	// The server spoke each draft version to the client that asked.
	logs := srv.Logs()
	for _, v := range []string{"draft=0", "draft=5", "draft=6"} {
		if !strings.Contains(logs, v) {
			t.Errorf("ferry serve never logged an upload created with %s", v)
		}
	}
}

// TestTusJSClientResumesAfterDrop cuts tus-js-client's connection in the
// middle of its PATCH. The server keeps what it received; the client's
// retry asks for the offset (HEAD), resumes there, and the result is
// byte-identical.
func TestTusJSClientResumesAfterDrop(t *testing.T) {
	node := needTusJSClient(t)
	src, sum := fixture(t, "upload.bin", uploadFileSize)
	srv := startFerryUploads(t)
	for _, protocol := range []string{"tus-v1", "ietf-draft-03", "ietf-draft-05"} {
		t.Run(protocol, func(t *testing.T) {
			proxy := startDropProxy(t, srv.Addr, 20*MiB)
			out, res := runTusJS(t, node, "--file", src, "--endpoint", proxy.URL+"/files/", "--protocol", protocol)
			if res.exitCode != 0 || out.Error != "" {
				t.Fatalf("tus-js-client failed: %s\n%s", out.Error, res)
			}
			select {
			case <-proxy.dropped:
			default:
				t.Fatal("the proxy never cut the connection")
			}
			t.Logf("%s: resumed at offset %d of %d; requests %v", protocol, out.OffsetAtStart, uploadFileSize, out.Requests)
			if !slices.ContainsFunc(out.Requests, func(r string) bool { return strings.HasPrefix(r, "HEAD 20") }) {
				t.Errorf("no offset retrieval (HEAD) after the drop: %v", out.Requests)
			}
			// Everything that crossed the proxy before the cut was kept,
			// less what was still in flight.
			if out.OffsetAtStart < 8*MiB || out.OffsetAtStart > 20*MiB {
				t.Errorf("resumed at %d; want most of the 20 MiB sent before the drop", out.OffsetAtStart)
			}
			url := srv.URL + out.URL[strings.Index(out.URL, "/files/"):]
			checkStored(t, srv, url, uploadFileSize, sum)
		})
	}
}

// formUpload is what POST /upload answers.
type formUpload struct {
	Files []struct {
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
		URL    string `json:"url"`
	} `json:"files"`
}

// TestCurlFormUploadToFerryServe sends a file with `curl -F file=@X` to
// POST /upload, with the bearer token --token requires.
func TestCurlFormUploadToFerryServe(t *testing.T) {
	curl := needPeer(t, "curl")
	src, sum := fixture(t, "upload.bin", uploadFileSize)
	srv := startFerryUploads(t, "--token", "interop-token")

	res := runCmd(t, 2*time.Minute, curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-F", "file=@"+src, srv.URL+"/upload")
	if strings.TrimSpace(res.stdout) != "401" {
		t.Errorf("without the token: %s, want 401", res.stdout)
	}
	res = runCmd(t, 2*time.Minute, curl, "-sS", "-f", "-H", "Authorization: Bearer interop-token", "-F", "file=@"+src, srv.URL+"/upload")
	if res.exitCode != 0 {
		t.Fatalf("curl -F failed: %s", res)
	}
	var out formUpload
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || len(out.Files) != 1 {
		t.Fatalf("POST /upload answered %q: %v", res.stdout, err)
	}
	f := out.Files[0]
	t.Logf("curl -F: %+v in %v", f, res.elapsed.Round(1e6))
	if f.Name != "upload.bin" || f.Size != uploadFileSize || f.SHA256 != sum {
		t.Errorf("stored %q, %d bytes, sha256 %s; want upload.bin, %d, %s", f.Name, f.Size, f.SHA256, uploadFileSize, sum)
	}
	id := f.URL[strings.LastIndex(f.URL, "/")+1:]
	assertSameFile(t, srv.Uploads+"/"+id+".bin", uploadFileSize, sum)
	// The download needs the token too.
	res = runCmd(t, 2*time.Minute, curl, "-sS", "-f", "-H", "Authorization: Bearer interop-token", "-o", t.TempDir()+"/got", "-w", "%{size_download}", f.URL)
	if res.exitCode != 0 || strings.TrimSpace(res.stdout) != fmt.Sprint(uploadFileSize) {
		t.Errorf("download: %s", res)
	}
}

// TestCurlFormUploadTooLarge checks --max-upload-size against curl.
func TestCurlFormUploadTooLarge(t *testing.T) {
	curl := needPeer(t, "curl")
	src, _ := fixture(t, "small-upload.bin", 2*MiB)
	srv := startFerryUploads(t, "--max-upload-size", "1M")
	res := runCmd(t, time.Minute, curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-F", "file=@"+src, srv.URL+"/upload")
	if strings.TrimSpace(res.stdout) != "413" {
		t.Errorf("a 2 MiB file with --max-upload-size 1M: %s, want 413", res)
	}
}

// TestFerryServeKilledMidUpload kills `ferry serve` with SIGKILL in the
// middle of tus-js-client's PATCH, restarts it on the same directory, and
// resumes the upload: the offset survives the crash (the server's last
// checkpoint, every 16 MiB), nothing beyond it is trusted, and the result
// is byte-identical.
func TestFerryServeKilledMidUpload(t *testing.T) {
	node := needTusJSClient(t)
	src, sum := fixture(t, "upload.bin", uploadFileSize)
	for _, protocol := range []string{"tus-v1", "ietf-draft-05"} {
		t.Run(protocol, func(t *testing.T) {
			uploads := t.TempDir()
			srv := startFerryUploadsIn(t, uploads)
			proxy := startSlowProxy(t, srv.Addr, 24*MiB)
			cmd := exec.Command(node, filepath.Join(jsDir(t), "upload.mjs"), "--file", src,
				"--endpoint", proxy.URL+"/files/", "--protocol", protocol)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()

			// Kill the server once 24 MiB are on its disk: past the first
			// checkpoint, before the second.
			id := waitForData(t, uploads, 24*MiB)
			srv.Kill()
			cmd.Process.Kill()
			cmd.Wait()

			srv2 := startFerryUploadsIn(t, uploads)
			url := srv2.URL + "/files/" + id
			out, res := runTusJS(t, node, "--file", src, "--endpoint", srv2.URL+"/files/", "--protocol", protocol, "--upload-url", url)
			if res.exitCode != 0 || out.Error != "" {
				t.Fatalf("resuming with tus-js-client failed: %s\n%s", out.Error, res)
			}
			t.Logf("%s: resumed after kill -9 at offset %d; requests %v", protocol, out.OffsetAtStart, out.Requests)
			if out.OffsetAtStart != 16*MiB {
				t.Errorf("resumed at %d, want %d: the checkpoint made before the crash", out.OffsetAtStart, 16*MiB)
			}
			checkStored(t, srv2, url, uploadFileSize, sum)
		})
	}
}

// waitForData waits until an upload's data file in dir holds at least n
// bytes and returns the upload's ID.
func waitForData(t *testing.T, dir string, n int64) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && fi.Size() >= n {
				return strings.TrimSuffix(filepath.Base(f), ".bin")
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no upload in %s reached %d bytes", dir, n)
	return ""
}
