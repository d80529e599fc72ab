package download

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/retry"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/transfer"
)

// fileJob is a job with the CLI's state store: the control file beside path.
func fileJob(url, path string) *Job {
	return &Job{Env: &send.Env{Client: http.DefaultClient, URL: url, Retry: fastRetry()},
		Path: path, Saved: ControlFile(ControlPath(path)), Hash: true}
}

func fastRetry() (p retry.Policy) {
	p.Initial, p.Max, p.MaxAttempts = time.Millisecond, 5*time.Millisecond, 3
	return p
}

// countingOrigin serves content like origin and counts the requests.
func countingOrigin(t *testing.T, content []byte, requests *int) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*requests++
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(content))
	}))
	t.Cleanup(ts.Close)
	return ts
}

// target serves testContent and returns its URL, a destination in a new
// directory, and the count of requests.
func target(t *testing.T) (url, path string, requests *int) {
	t.Helper()
	requests = new(int)
	ts := countingOrigin(t, testContent, requests)
	return ts.URL, filepath.Join(t.TempDir(), "out.bin"), requests
}

var testContent = bytes.Repeat([]byte("ferry"), 1000)

// plantAt leaves what at name, pointing links at a victim file, and
// returns the victim.
func plantAt(t *testing.T, name, what string) (victim string) {
	t.Helper()
	victim = filepath.Join(filepath.Dir(name), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	switch what {
	case "symlink":
		err = os.Symlink(victim, name)
	case "dangling symlink":
		err = os.Symlink(filepath.Join(filepath.Dir(name), "nowhere"), name)
	case "hardlink":
		err = os.Link(victim, name)
	case "fifo":
		err = syscall.Mkfifo(name, 0o644)
	case "directory":
		err = os.Mkdir(name, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	return victim
}

func assertVictim(t *testing.T, victim string) {
	t.Helper()
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("the victim now holds %d bytes", len(b))
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(victim), "nowhere")); err == nil {
		t.Error("a dangling link's target was created")
	}
}

func runWithin(t *testing.T, j *Job) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Run(ctx, j)
}

// What someone else left at the .part or control file's name is neither
// followed, written, nor replaced, and the download fails before its first
// request.
func TestPlantedPartAndControlFiles(t *testing.T) {
	for _, name := range []string{"part", "control"} {
		for _, what := range []string{"symlink", "dangling symlink", "hardlink", "fifo", "directory"} {
			t.Run(name+" "+what, func(t *testing.T) {
				url, path, requests := target(t)
				planted := PartPath(path)
				if name == "control" {
					planted = ControlPath(path)
				}
				victim := plantAt(t, planted, what)
				before, _ := os.Lstat(planted)
				_, err := runWithin(t, fileJob(url, path))
				if !errors.Is(err, atomicfile.ErrUnsafe) {
					t.Fatalf("Run: %v, want ErrUnsafe", err)
				}
				assertVictim(t, victim)
				if *requests != 0 {
					t.Errorf("%d requests made", *requests)
				}
				if after, err := os.Lstat(planted); err != nil || after.Mode() != before.Mode() {
					t.Errorf("the planted %s was replaced or removed (%v)", what, err)
				}
				if _, err := os.Lstat(path); err == nil {
					t.Error("the final name was created")
				}
			})
		}
	}
}

// A link, a FIFO or a directory at the final name is refused before the
// first request; one planted while the download runs is refused at the
// commit, and the verified bytes stay for a later run.
func TestPlantedFinalName(t *testing.T) {
	content := testContent
	for _, what := range []string{"symlink", "dangling symlink", "fifo", "directory"} {
		t.Run(what, func(t *testing.T) {
			url, path, requests := target(t)
			victim := plantAt(t, path, what)
			_, err := runWithin(t, fileJob(url, path))
			if !errors.Is(err, atomicfile.ErrUnsafe) {
				t.Fatalf("Run: %v, want ErrUnsafe", err)
			}
			if *requests != 0 {
				t.Errorf("%d requests made", *requests)
			}
			assertVictim(t, victim)
			assertOnly(t, filepath.Dir(path), "out.bin", "victim")
		})
	}
	t.Run("planted during the download", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "out.bin")
		victim := filepath.Join(filepath.Dir(path), "victim")
		os.WriteFile(victim, []byte("precious"), 0o644)
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				os.Symlink(victim, path)
			}
			w.Header().Set("ETag", `"v1"`)
			http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(content))
		}))
		t.Cleanup(ts.Close)
		_, err := runWithin(t, fileJob(ts.URL, path))
		if !errors.Is(err, atomicfile.ErrUnsafe) {
			t.Fatalf("Run: %v, want ErrUnsafe", err)
		}
		assertVictim(t, victim)
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("the link was replaced (%v)", err)
		}
		// The link gone, the same job commits what it holds.
		os.Remove(path)
		res, err := runWithin(t, fileJob(ts.URL, path))
		if err != nil || res.Downloaded != 0 {
			t.Fatalf("after removing the link: %+v, %v", res, err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
			t.Error("wrong content")
		}
	})
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, e := range entries {
		if !want[e.Name()] {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// -c adopts only a regular file: a link at the final name is not moved to
// the .part name and written through.
func TestContinueAdoptsOnlyRegularFiles(t *testing.T) {
	url, path, _ := target(t)
	victim := plantAt(t, path, "symlink")
	j := fileJob(url, path)
	j.Continue = true
	if _, err := runWithin(t, j); !errors.Is(err, atomicfile.ErrUnsafe) {
		t.Fatalf("Run: %v, want ErrUnsafe", err)
	}
	assertVictim(t, victim)
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link moved: %v", err)
	}
}

// The .part file, and so the final file, is created 0666 less the umask.
func TestFinalFileHonoursTheUmask(t *testing.T) {
	url, path, _ := target(t)
	old := syscall.Umask(0o002)
	_, err := runWithin(t, fileJob(url, path))
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o664 {
		t.Errorf("final file mode %v, want 0664", fi.Mode().Perm())
	}
}

// A control file is private while the download runs: its URL may carry a
// token.
func TestControlFileIsPrivate(t *testing.T) {
	content := testContent
	path := filepath.Join(t.TempDir(), "out.bin")
	var mode fs.FileMode
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			if fi, err := os.Stat(ControlPath(path)); err == nil {
				mode = fi.Mode().Perm()
			}
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(content))
	}))
	t.Cleanup(ts.Close)
	if _, err := runWithin(t, fileJob(ts.URL+"/f?token=secret", path)); err != nil {
		t.Fatal(err)
	}
	if mode != 0o600 {
		t.Errorf("control file mode %v, want 0600", mode)
	}
}

// A control file's temporary files that killed runs left go when the next
// run holds the download: no other writer of them can be in flight.
func TestKilledSavesLeaveNothing(t *testing.T) {
	url, path, _ := target(t)
	debris := filepath.Join(filepath.Dir(path), ".out.bin.ferry.tmp123")
	if err := os.WriteFile(debris, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runWithin(t, fileJob(url, path)); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, filepath.Dir(path), "out.bin")
}

// streamSink collects a stream destination's bytes.
type streamSink struct{ bytes.Buffer }

// A stream destination gets the body in place, over one connection, with
// no file beside it; a dropped connection continues with a range.
func TestStreamDestination(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	dir := t.TempDir()
	drops := 1
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Method == http.MethodGet && r.Header.Get("Range") == "" && drops > 0 {
			drops--
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			w.Write(content[:300<<10])
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(content))
	}))
	t.Cleanup(ts.Close)
	var sink streamSink
	j := &Job{Env: &send.Env{Client: http.DefaultClient, URL: ts.URL, Retry: fastRetry()},
		Path: filepath.Join(dir, "stdout"), Saved: NewMemState(nil), Hash: true, Stream: &sink, Connections: 8}
	res, err := runWithin(t, j)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), content) {
		t.Fatalf("the stream got %d bytes, want the %d of the resource", sink.Len(), len(content))
	}
	if res.Size != int64(len(content)) || res.SHA256 == "" {
		t.Errorf("result %+v", res)
	}
	assertOnly(t, dir)
}

// A stream cannot take back what it wrote: a resource that changed after
// the first bytes fails the download instead of splicing.
func TestStreamCannotRestart(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	etag := `"v1"`
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		if r.Method == http.MethodGet && r.Header.Get("Range") == "" {
			etag = `"v2"`
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			w.Write(content[:300<<10])
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(content))
	}))
	t.Cleanup(ts.Close)
	var sink streamSink
	j := &Job{Env: &send.Env{Client: http.DefaultClient, URL: ts.URL, Retry: fastRetry()},
		Path: "-", Saved: NewMemState(nil), Stream: &sink}
	_, err := runWithin(t, j)
	if !errors.Is(err, ErrStreamRestart) {
		t.Fatalf("Run: %v, want ErrStreamRestart", err)
	}
	if sink.Len() != 300<<10 {
		t.Errorf("the stream got %d bytes, want only the first answer's %d", sink.Len(), 300<<10)
	}
	var te *transfer.Error
	if !errors.As(err, &te) {
		t.Errorf("%T is not a *transfer.Error", err)
	}
}
