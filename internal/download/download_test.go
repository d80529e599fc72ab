package download

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/transfer"
)

// origin serves content with a strong ETag; HEAD answers with the validator
// but no length, so the client learns the size only from ranged answers.
func origin(t *testing.T, content []byte) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(content))
	}))
	t.Cleanup(ts.Close)
	return ts
}

func runJob(t *testing.T, url, path string, st *State) (*Result, []transfer.Event, error) {
	t.Helper()
	var events []transfer.Event
	j := &Job{
		Env:   &send.Env{Client: http.DefaultClient, URL: url, Emit: func(e transfer.Event) { events = append(events, e) }},
		Path:  path,
		Saved: NewMemState(st),
		Hash:  true,
	}
	res, err := Run(context.Background(), j)
	return res, events, err
}

// A 416 whose complete length equals the bytes held means the file is
// complete (RFC 9110 §15.5.17): commit, fetch nothing.
func TestRangeNotSatisfiableMeansComplete(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 1000)
	ts := origin(t, content)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(PartPath(path), content, 0o644); err != nil {
		t.Fatal(err)
	}
	res, _, err := runJob(t, ts.URL, path, &State{Version: stateVersion, URL: ts.URL, Size: -1, Validator: validatorV1()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Downloaded != 0 || res.Size != int64(len(content)) {
		t.Fatalf("downloaded %d, size %d; want 0 and %d", res.Downloaded, res.Size, len(content))
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Fatal("wrong content")
	}
}

// A 416 saying the resource is shorter than what is held restarts from zero.
func TestRangeNotSatisfiableShorterRestarts(t *testing.T) {
	content := bytes.Repeat([]byte("abcdefghij"), 1000)
	ts := origin(t, content)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(PartPath(path), append(bytes.Clone(content), "extra"...), 0o644); err != nil {
		t.Fatal(err)
	}
	res, events, err := runJob(t, ts.URL, path, &State{Version: stateVersion, URL: ts.URL, Size: -1, Validator: validatorV1()})
	if err != nil {
		t.Fatal(err)
	}
	var restarted bool
	for _, e := range events {
		if _, ok := e.(transfer.RestartEvent); ok {
			restarted = true
		}
	}
	if !restarted || res.Downloaded != int64(len(content)) {
		t.Fatalf("restarted=%v downloaded=%d; want a restart and the whole %d bytes", restarted, res.Downloaded, len(content))
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Fatal("wrong content")
	}
}

func validatorV1() (v httprange.Validator) {
	v.ETag = `"v1"`
	return v
}
