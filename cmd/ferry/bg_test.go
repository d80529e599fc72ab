package main

import (
	"bufio"
	"bytes"
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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/internal/bgapi"
	"github.com/ferryhq/ferry/server"
)

// bgEnv is a daemon started with ferry daemon in this process, and an
// origin for it: a ferry server over root taking uploads, plus /slow/,
// which sends a little and then stalls, to keep a task running.
type bgEnv struct {
	t           *testing.T
	state, sock string
	root        string
	origin      string
	// stop stops the daemon, checking it exits 0; once is enough.
	stop func()
}

func startDaemon(t *testing.T) *bgEnv {
	t.Helper()
	e := &bgEnv{t: t, state: t.TempDir(), root: t.TempDir()}
	srv, err := server.New(server.Config{Root: e.root, Uploads: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/slow/") {
			srv.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Length", "1048576")
		w.Write(make([]byte, 1024))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	// Cleanups run last first: the daemon stops, then the origin.
	t.Cleanup(func() {
		close(release)
		origin.Close()
		srv.Close()
	})
	e.origin = origin.URL

	// Unix socket paths are short: not under t.TempDir().
	sockDir, err := os.MkdirTemp("", "fd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	e.sock = filepath.Join(sockDir, "d.sock")
	e.run()
	return e
}

// startDaemonAt starts a daemon again on the state, socket and origin of
// e, whose daemon has stopped.
func startDaemonAt(t *testing.T, e *bgEnv) *bgEnv {
	t.Helper()
	e2 := *e
	e2.t = t
	e2.run()
	return &e2
}

// run starts ferry daemon on e's state and socket, until e.stop.
func (e *bgEnv) run() {
	t := e.t
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"daemon", "--state", e.state, "--socket", e.sock, "-q"}, nil, io.Discard, logs)
	}()
	e.stop = sync.OnceFunc(func() {
		stop()
		select {
		case code := <-exit:
			if code != exitOK {
				t.Errorf("ferry daemon exited %d after its context ended:\n%s", code, logs)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("ferry daemon did not stop:\n%s", logs)
		}
	})
	t.Cleanup(e.stop)
	cl := bgapi.NewClient(e.sock)
	defer cl.Close()
	if err := cl.WaitReady(ctx, time.Minute); err != nil {
		t.Fatalf("the daemon did not come up: %v\n%s", err, logs)
	}
}

// ferry runs the CLI against the test's daemon.
func (e *bgEnv) ferry(args ...string) (code int, stdout, stderr string) {
	return e.ferryCtx(context.Background(), args...)
}

func (e *bgEnv) ferryCtx(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb syncBuffer
	args = append(args, "--state", e.state, "--socket", e.sock)
	code = run(ctx, args, nil, &out, &errb)
	return code, out.String(), errb.String()
}

// must runs the CLI and fails the test unless it exits 0; it returns stdout.
func (e *bgEnv) must(args ...string) string {
	e.t.Helper()
	code, out, errs := e.ferry(args...)
	if code != exitOK {
		e.t.Fatalf("ferry %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// submit runs a bg command and returns the task ID it prints.
func (e *bgEnv) submit(args ...string) string {
	e.t.Helper()
	id := strings.TrimSpace(e.must(args...))
	if id == "" || strings.ContainsAny(id, " \n") {
		e.t.Fatalf("ferry %s printed %q, want a task ID", strings.Join(args, " "), id)
	}
	return id
}

func (e *bgEnv) file(name, content string) string {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.root, name), []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return e.origin + "/" + name
}

// state polls the task until it is in one of states, for up to a minute.
func (e *bgEnv) waitState(id string, states ...bgapi.State) bgapi.Task {
	e.t.Helper()
	cl := bgapi.NewClient(e.sock)
	defer cl.Close()
	var t *bgapi.Task
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if t, err = cl.Task(context.Background(), id); err == nil && slices.Contains(states, t.State) {
			return *t
		}
	}
	e.t.Fatalf("task %s did not reach %v: %+v, %v", id, states, t, err)
	return bgapi.Task{}
}

func TestBgGetWait(t *testing.T) {
	e := startDaemon(t)
	url := e.file("hello.txt", "hello, ferry\n")
	dir := t.TempDir()

	id := e.submit("bg", "get", url, "-o", filepath.Join(dir, "a.txt"), "--session", "s1")
	if out := e.must("wait", id); out != id+" done\n" {
		t.Errorf("wait printed %q, want %q", out, id+" done\n")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a.txt")); err != nil || string(b) != "hello, ferry\n" {
		t.Errorf("a.txt: %q, %v", b, err)
	}

	// Without -o the file is named after the URL, in our directory, not
	// the daemon's.
	t.Chdir(dir)
	sum := sha256.Sum256([]byte("hello, ferry\n"))
	e.submit("bg", "get", url, "--session", "s1", "--checksum", "sha-256="+hex.EncodeToString(sum[:]))
	var tasks []bgapi.Task
	if err := json.Unmarshal([]byte(e.must("wait", "--session", "s1", "--json")), &tasks); err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 {
		t.Fatalf("wait --session --json: %d tasks, want 2", len(tasks))
	}
	for _, tk := range tasks {
		if tk.State != bgapi.Done || tk.Result == nil || tk.Result.Size != 13 {
			t.Errorf("task %s: %s, result %+v", tk.ID, tk.State, tk.Result)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "hello.txt")); err != nil || string(b) != "hello, ferry\n" {
		t.Errorf("hello.txt: %q, %v", b, err)
	}

	// A failed task makes wait fail and say why.
	bad := e.submit("bg", "get", e.origin+"/nope", "-o", filepath.Join(dir, "nope"), "--session", "s2")
	code, out, _ := e.ferry("wait", bad)
	if code != exitFailed || !strings.HasPrefix(out, bad+" failed: ") {
		t.Errorf("wait on a failed task: exit %d, %q", code, out)
	}
}

// Without -o, bg get names the file as get does, and refuses as get does
// when that name is a directory here, rather than saving inside it.
func TestBgGetNameIsADirectory(t *testing.T) {
	e := startDaemon(t)
	url := e.file("hello.txt", "hello, ferry\n")
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("hello.txt", 0o755); err != nil {
		t.Fatal(err)
	}
	var errb syncBuffer
	getCode := run(context.Background(), []string{"get", "-q", url}, nil, io.Discard, &errb)
	bgCode, _, bgErr := e.ferry("bg", "get", url, "--session", "s")
	for _, r := range []struct {
		cmd    string
		code   int
		stderr string
	}{{"get", getCode, errb.String()}, {"bg get", bgCode, bgErr}} {
		if r.code != exitUsage || !strings.Contains(r.stderr, "hello.txt is a directory here: name the file with -o") {
			t.Errorf("ferry %s URL: exit %d, want %d\n%s", r.cmd, r.code, exitUsage, r.stderr)
		}
	}
	if names, _ := os.ReadDir("hello.txt"); len(names) > 0 {
		t.Errorf("the directory holds %v", names)
	}
}

func TestBgPut(t *testing.T) {
	e := startDaemon(t)
	dir := t.TempDir()
	data := bytes.Repeat([]byte("ferry put in the background\n"), 40000)
	if err := os.WriteFile(filepath.Join(dir, "data.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	id := e.submit("bg", "put", "data.bin", e.origin+"/files/", "--session", "up", "--chunk-size", "256k")
	var tasks []bgapi.Task
	if err := json.Unmarshal([]byte(e.must("wait", id, "--json")), &tasks); err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].State != bgapi.Done || tasks[0].Result == nil || tasks[0].Result.Location == "" {
		t.Fatalf("wait --json: %+v", tasks)
	}
	resp, err := http.Get(tasks[0].Result.Location)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, data) {
		t.Errorf("the origin holds %d bytes, want the %d uploaded", len(got), len(data))
	}
}

// The flags of bg get and bg hls that the foreground commands have reach
// the daemon's engine: --create-dirs makes -o's directories, and
// --max-segments bounds a playlist.
func TestBgCreateDirsAndMaxSegments(t *testing.T) {
	e := startDaemon(t)
	url := e.file("hello.txt", "hello, ferry\n")
	out := filepath.Join(t.TempDir(), "made", "here", "a.txt")
	id := e.submit("bg", "get", url, "-o", out, "--create-dirs", "--session", "dirs")
	if got := e.must("wait", id); got != id+" done\n" {
		t.Errorf("wait printed %q, want %q", got, id+" done\n")
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "hello, ferry\n" {
		t.Errorf("%s: %q, %v", out, b, err)
	}

	playlist := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"
	os.Mkdir(filepath.Join(e.root, "four"), 0o755)
	for _, seg := range []string{"a", "b", "c", "d"} {
		e.file("four/"+seg+".ts", seg)
		playlist += "#EXTINF:2,\n" + seg + ".ts\n"
	}
	url = e.file("four/index.m3u8", playlist+"#EXT-X-ENDLIST\n")
	id = e.submit("bg", "hls", url, "-o", t.TempDir(), "--max-segments", "3", "--session", "segs")
	if code, got, _ := e.ferry("wait", id); code != exitFailed || !strings.Contains(got, "more than 3 segments") {
		t.Errorf("bg hls --max-segments 3 of 4 segments: exit %d, %q; want the limit", code, got)
	}
	id = e.submit("bg", "hls", url, "-o", t.TempDir(), "--max-segments", "4", "--session", "segs")
	if got := e.must("wait", id); got != id+" done\n" {
		t.Errorf("bg hls --max-segments 4 of 4 segments: %q", got)
	}
}

// bg put sends the form field and the tus metadata it is given, as put
// does.
func TestBgPutFieldAndMeta(t *testing.T) {
	e := startDaemon(t)
	file := filepath.Join(t.TempDir(), "data.bin")
	os.WriteFile(file, []byte("a form's file"), 0o644)
	var mu sync.Mutex
	var field, metadata string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method {
		case http.MethodPost:
			if mr, err := r.MultipartReader(); err == nil {
				if p, err := mr.NextPart(); err == nil {
					field = p.FormName()
				}
				io.Copy(io.Discard, r.Body)
				return
			}
			metadata = r.Header.Get("Upload-Metadata")
			w.Header().Set("Location", "/files/1")
			w.WriteHeader(http.StatusCreated)
		case http.MethodPatch:
			n, _ := io.Copy(io.Discard, r.Body)
			w.Header().Set("Upload-Offset", strconv.FormatInt(n, 10))
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer ts.Close()
	for _, args := range [][]string{
		{"--protocol", "multipart", "--field", "attachment"},
		{"--protocol", "tus", "--meta", "note=hi"},
	} {
		id := e.submit(append([]string{"bg", "put", file, ts.URL + "/files/", "--session", "form"}, args...)...)
		if got := e.must("wait", id); got != id+" done\n" {
			t.Errorf("bg put %v: %q", args, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if field != "attachment" || !strings.Contains(metadata, "note aGk=") {
		t.Errorf("the server got field %q and Upload-Metadata %q, want attachment and note=hi", field, metadata)
	}
}

func TestBgLs(t *testing.T) {
	e := startDaemon(t)
	url := e.file("hello.txt", "hello, ferry\n")
	dir := t.TempDir()
	done := e.submit("bg", "get", url, "-o", filepath.Join(dir, "done.txt"), "--session", "ls")
	e.must("wait", done)
	held := e.submit("bg", "get", url, "-o", filepath.Join(dir, "held.txt"), "--session", "ls", "--not-before", "1h", "--priority", "5", "--limit-rate", "2M")

	lines := strings.Split(strings.TrimSpace(e.must("ls")), "\n")
	if len(lines) != 3 || !regexpMatch(`^ID +SESSION +KIND +STATE +PROGRESS +WHAT$`, lines[0]) {
		t.Fatalf("ls:\n%s", strings.Join(lines, "\n"))
	}
	want := map[string]string{
		done: `^` + done + ` +ls +get +done +13 B / 13 B +` + url + ` -> ` + filepath.Join(dir, "done.txt") + `$`,
		held: `^` + held + ` +ls +get +queued +- +` + url + ` -> ` + filepath.Join(dir, "held.txt") + `$`,
	}
	for _, l := range lines[1:] {
		id, _, _ := strings.Cut(l, " ")
		if re, ok := want[id]; !ok || !regexpMatch(re, l) {
			t.Errorf("ls line %q does not match %q", l, re)
		}
	}

	var tasks []bgapi.Task
	if err := json.Unmarshal([]byte(e.must("ls", "--json", "--session", "ls")), &tasks); err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 {
		t.Fatalf("ls --json: %d tasks, want 2", len(tasks))
	}
	for _, tk := range tasks {
		if tk.ID == held && (tk.Priority != 5 || time.Until(tk.NotBefore) < 59*time.Minute || time.Until(tk.NotBefore) > time.Hour) {
			t.Errorf("held task: priority %d, not before %v", tk.Priority, tk.NotBefore)
		}
		var spec bgapi.GetRequest
		if err := json.Unmarshal(tk.Request, &spec); tk.ID == held && (err != nil || spec.RateLimit != 2<<20) {
			t.Errorf("held task: --limit-rate 2M sent as %d (%v)", spec.RateLimit, err)
		}
	}
	if out := e.must("ls", "--json", "--session", "other"); out != "[]\n" {
		t.Errorf("ls --json of an empty session: %q", out)
	}
	if out := e.must("ls", "--session", "other"); strings.Count(out, "\n") != 1 {
		t.Errorf("ls of an empty session:\n%s", out)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func TestBgPauseResumeCancel(t *testing.T) {
	e := startDaemon(t)
	dir := t.TempDir()

	// A running transfer.
	id := e.submit("bg", "get", e.origin+"/slow/big", "-o", filepath.Join(dir, "big"), "--session", "prc")
	e.waitState(id, bgapi.Running)
	if out := e.must("pause", id); out != id+" paused\n" {
		t.Errorf("pause: %q", out)
	}
	out := e.must("resume", id)
	if out != id+" queued\n" && out != id+" running\n" {
		t.Errorf("resume: %q", out)
	}
	e.waitState(id, bgapi.Running)
	if out := e.must("cancel", id); out != id+" canceled\n" {
		t.Errorf("cancel: %q", out)
	}
	if code, out, _ := e.ferry("wait", id); code != exitFailed || out != id+" canceled\n" {
		t.Errorf("wait on a canceled task: exit %d, %q", code, out)
	}

	// A task held back by --not-before, and several at once.
	held := e.submit("bg", "get", e.origin+"/slow/later", "-o", filepath.Join(dir, "later"), "--session", "prc", "--not-before", "1h")
	if out := e.must("pause", held); out != held+" paused\n" {
		t.Errorf("pause a queued task: %q", out)
	}
	if out := e.must("resume", held); out != held+" queued\n" {
		t.Errorf("resume a held task: %q", out)
	}

	// An unknown task fails, but the others are acted on.
	code, out, errs := e.ferry("cancel", held, "nosuchtask")
	if code != exitFailed || out != held+" canceled\n" || !strings.Contains(errs, "nosuchtask") || !strings.Contains(errs, "no such task") {
		t.Errorf("cancel of a task and an unknown one: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	// A finished task cannot be paused.
	if code, _, errs := e.ferry("pause", held); code != exitFailed || !strings.Contains(errs, "canceled") {
		t.Errorf("pause of a canceled task: exit %d, %s", code, errs)
	}
}

func TestBgEvents(t *testing.T) {
	e := startDaemon(t)
	url := e.file("hello.txt", "hello, ferry\n")
	dir := t.TempDir()
	id := e.submit("bg", "get", url, "-o", filepath.Join(dir, "a.txt"), "--session", "ev")
	e.must("wait", id)

	out := e.must("events", "--session", "ev")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	wantTypes := []string{"created", "started", "done"}
	if len(lines) != len(wantTypes) {
		t.Fatalf("events:\n%s", out)
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) < 5 || f[0] != strconv.Itoa(i+1) || f[3] != id || f[4] != wantTypes[i] {
			t.Errorf("event line %q: want seq %d, task %s, %s", l, i+1, id, wantTypes[i])
		}
	}
	if !strings.HasSuffix(lines[2], "done "+filepath.Join(dir, "a.txt")+" (13 B)") {
		t.Errorf("the done event does not tell the result: %q", lines[2])
	}

	// --json is NDJSON; --after skips what was had.
	var evs []bgapi.Event
	sc := bufio.NewScanner(strings.NewReader(e.must("events", "--session", "ev", "--json", "--after", "1")))
	for sc.Scan() {
		var ev bgapi.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("events --json line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	if len(evs) != 2 || evs[0].Seq != 2 || evs[1].Type != bgapi.EventDone || evs[1].Result == nil || evs[1].Result.Size != 13 {
		t.Errorf("events --json --after 1: %+v", evs)
	}

	// --ack: a later run shows nothing of what was acknowledged.
	if out := e.must("events", "--session", "ev", "--ack"); strings.Count(out, "\n") != 3 {
		t.Errorf("events --ack:\n%s", out)
	}
	if out := e.must("events", "--session", "ev"); out != "" {
		t.Errorf("events after --ack:\n%s", out)
	}
	id2 := e.submit("bg", "get", url, "-o", filepath.Join(dir, "b.txt"), "--session", "ev")
	e.must("wait", id2)
	if out := e.must("events", "--session", "ev"); !strings.HasPrefix(out, "4 ") || strings.Contains(out, id+" ") {
		t.Errorf("events after a new task:\n%s", out)
	}
}

func TestBgEventsFollowInUse(t *testing.T) {
	e := startDaemon(t)
	dir := t.TempDir()
	held := e.submit("bg", "get", e.origin+"/slow/x", "-o", filepath.Join(dir, "x"), "--session", "fl", "--not-before", "1h")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errs syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"events", "--session", "fl", "--follow", "--state", e.state, "--socket", e.sock}, nil, &out, &errs)
	}()
	waitFor(t, &out, " created")

	code, _, stderr := e.ferry("events", "--session", "fl", "--follow")
	if code != exitFailed || !strings.Contains(stderr, "session in use") || !strings.Contains(stderr, "attached by another process") {
		t.Errorf("a second events --follow: exit %d, stderr %q", code, stderr)
	}
	// Reading without --follow does not attach.
	if code, _, stderr := e.ferry("events", "--session", "fl"); code != exitOK {
		t.Errorf("events beside a follower: exit %d, %s", code, stderr)
	}

	// The follower sees what happens next.
	e.must("cancel", held)
	waitFor(t, &out, held+" canceled")
	stop()
	if code := <-exit; code != exitOK {
		t.Errorf("events --follow ended by its context: exit %d, %s", code, errs.String())
	}

	// Once the follower has gone the session can be attached again.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		code, _, stderr := e.ferryCtx(ctx, "events", "--session", "fl", "--follow")
		cancel()
		if code == exitOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session stays attached after its follower ended: exit %d, %s", code, stderr)
		}
	}

	// A follower whose daemon stops fails: its stream has ended.
	out = syncBuffer{}
	go func() {
		exit <- run(context.Background(), []string{"events", "--session", "fl", "--follow", "--state", e.state, "--socket", e.sock}, nil, &out, &errs)
	}()
	waitFor(t, &out, held+" canceled")
	e.stop()
	if code := <-exit; code != exitFailed || !strings.Contains(errs.String(), "ended the event stream") {
		t.Errorf("events --follow when the daemon stops: exit %d, %s", code, errs.String())
	}
}

// waitFor waits (up to a minute) until b holds s.
func waitFor(t *testing.T, b *syncBuffer, s string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(b.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", s, b)
		}
	}
}

// Usage errors exit 2 before any daemon is asked.
func TestBgUsage(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("x"), 0o644)
	const url = "http://127.0.0.1:1/f"
	tests := [][]string{
		{"bg", "get", url},
		{"bg", "get", url, "--session", "s", "--not-before", "tomorrow"},
		{"bg", "get", url, "--session", "s", "--not-before", "-1h"},
		{"bg", "get", url, "--session", "s", "--limit-rate", "fast"},
		{"bg", "get", "ftp://x/f", "--session", "s"},
		{"bg", "get", "--session", "s"},
		{"bg", "get", url, "--session", "s", "--checksum", "md5=1"},
		{"bg", "get", url, "--session", "s", "-H", "nocolon"},
		{"bg", "put", file, url},
		{"bg", "put", file + ".none", url, "--session", "s"},
		{"bg", "put", file, url, "--session", "s", "--protocol", "ftp"},
		{"bg", "hls", url, "--session", "s"},
		{"bg", "hls", url, "-o", "d"},
		{"bg", "hls", url, "-o", "d", "--session", "s", "--max-segments", "0"},
		{"bg", "frob"},
		{"pause"},
		{"wait"},
		{"events"},
		{"ls", "extra"},
		{"daemon", "extra"},
		{"daemon", "--max-tasks", "0"},
		{"daemon", "--limit-rate", "fast"},
	}
	for _, args := range tests {
		var errb bytes.Buffer
		code := run(context.Background(), append(args, "--socket", sock), nil, io.Discard, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), "Run 'ferry --help'") {
			t.Errorf("ferry %s: exit %d, want %d\n%s", strings.Join(args, " "), code, exitUsage, errb.String())
		}
	}
}

// Without a daemon the commands that manage tasks fail and say how to
// start one (bg starts one: TestBgStartsDaemon).
func TestBgNoDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	tests := [][]string{
		{"ls"},
		{"pause", "a", "b"},
		{"wait", "a"},
		{"events", "--session", "s"},
	}
	for _, args := range tests {
		var errb bytes.Buffer
		code := run(context.Background(), append(args, "--socket", sock), nil, io.Discard, &errb)
		if code != exitFailed || !strings.Contains(errb.String(), "no daemon is running") || !strings.Contains(errb.String(), "ferry daemon") ||
			strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("ferry %s: exit %d, want %d\n%s", strings.Join(args, " "), code, exitFailed, errb.String())
		}
	}
	// FERRY_SOCKET is where the commands look by default.
	t.Setenv("FERRY_SOCKET", sock)
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"ls"}, nil, io.Discard, &errb); code != exitFailed || !strings.Contains(errb.String(), sock) {
		t.Errorf("ls with FERRY_SOCKET: exit %d, %s", code, errb.String())
	}
}

// ferry bg starts a daemon when none runs, as the library does, on the
// state directory and socket it was given; the daemon outlives the
// command.
func TestBgStartsDaemon(t *testing.T) {
	state := t.TempDir()
	sockDir, err := os.MkdirTemp("", "fd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "d.sock")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := bgapi.NewClient(sock)
	defer c.Close()
	defer func() { // the daemon runs on its own: stop it, and wait until it has
		h, err := c.Health(ctx)
		if err != nil {
			return
		}
		syscall.Kill(h.PID, syscall.SIGTERM)
		for ctx.Err() == nil {
			if _, err := c.Health(ctx); errors.Is(err, bgapi.ErrNoDaemon) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	var out, errb bytes.Buffer
	args := []string{"bg", "get", "http://127.0.0.1:1/f", "-o", filepath.Join(t.TempDir(), "f"), "--session", "s",
		"--not-before", "1h", "--state", state, "--socket", sock}
	if code := run(ctx, args, nil, &out, &errb); code != exitOK {
		t.Fatalf("ferry bg get without a daemon: exit %d\n%s%s", code, errb.String(), readLog(state))
	}
	tasks, err := c.Tasks(ctx, "s")
	if err != nil || len(tasks) != 1 || tasks[0].ID != strings.TrimSpace(out.String()) || tasks[0].State != bgapi.Queued {
		t.Fatalf("the started daemon has %+v (%v); want the queued task %s", tasks, err, out.String())
	}
}

func readLog(state string) string {
	b, _ := os.ReadFile(filepath.Join(state, "daemon.log"))
	return string(b)
}

// A second daemon on the same state directory refuses to start.
func TestBgOneDaemonPerState(t *testing.T) {
	e := startDaemon(t)
	sockDir, err := os.MkdirTemp("", "fd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	var errb bytes.Buffer
	code := run(context.Background(), []string{"daemon", "-q", "--state", e.state, "--socket", filepath.Join(sockDir, "2.sock")}, nil, io.Discard, &errb)
	if code != exitFailed || !strings.Contains(errb.String(), "another daemon is running") {
		t.Errorf("a second daemon: exit %d, %s", code, errb.String())
	}
}

func TestParseNotBefore(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"90m":                       now.Add(90 * time.Minute),
		"0s":                        now,
		"2026-03-04T05:06:07Z":      time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		"2026-03-04T05:06:07+02:00": time.Date(2026, 3, 4, 3, 6, 7, 0, time.UTC),
	} {
		if got, err := parseNotBefore(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseNotBefore(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"tomorrow", "-5m", "2026-03-04"} {
		if _, err := parseNotBefore(in, now); err == nil {
			t.Errorf("parseNotBefore(%q) succeeded", in)
		}
	}
}

func TestTaskProgressAndWhat(t *testing.T) {
	stored := func(kind, spec string) ferry.StoredTask {
		return ferry.StoredTask{Kind: kind, Spec: json.RawMessage(spec)}
	}
	tests := []struct {
		task       ferry.BackgroundTask
		prog, what string
	}{
		{ferry.BackgroundTask{Kind: "get", State: "running", Progress: &ferry.Progress{Done: 12897485, Expected: 40 << 20},
			Stored: stored("get", `{"url":"http://h/a","path":"/d/a"}`)}, "12.3 MiB / 40.0 MiB", "http://h/a -> /d/a"},
		{ferry.BackgroundTask{Kind: "get", State: "running", Progress: &ferry.Progress{Done: 10, Expected: -1},
			Stored: stored("get", `{"url":"http://h/a","path":"/d/a"}`)}, "10 B / ?", "http://h/a -> /d/a"},
		{ferry.BackgroundTask{Kind: "put", State: "queued", Stored: stored("put", `{"url":"http://h/files/","path":"/d/a"}`)},
			"-", "/d/a -> http://h/files/"},
		{ferry.BackgroundTask{Kind: "hls", State: "done", Result: &ferry.Result{Size: 2048},
			Stored: stored("hls", `{"url":"http://h/i.m3u8","dir":"/d/v"}`)}, "2.0 KiB / 2.0 KiB", "http://h/i.m3u8 -> /d/v"},
	}
	for _, tt := range tests {
		if got := taskProgress(&tt.task); got != tt.prog {
			t.Errorf("taskProgress = %q, want %q", got, tt.prog)
		}
		if got := taskWhat(&tt.task); got != tt.what {
			t.Errorf("taskWhat = %q, want %q", got, tt.what)
		}
	}
}

func TestParseBitRate(t *testing.T) {
	for in, want := range map[string]int64{"800k": 800_000, "3M": 3_000_000, "1.5M": 1_500_000, "64000": 64_000, "1G": 1_000_000_000} {
		if got, err := parseBitRate(in); err != nil || got != want {
			t.Errorf("parseBitRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1M", "NaNk", "1e400"} {
		if _, err := parseBitRate(in); err == nil {
			t.Errorf("parseBitRate(%q) accepted", in)
		}
	}
}

// ferry ls says what a waiting task waits for, as the progress line of a
// transfer in the foreground does.
func TestLsStateOfAWaitingTask(t *testing.T) {
	now := time.Unix(1e9, 0)
	spec := json.RawMessage(`{"url":"http://10.1.2.3:8080/f","path":"f"}`)
	tk := &ferry.BackgroundTask{Kind: "get", State: "waiting", Tries: 3, NextTry: now.Add(20 * time.Second),
		Stored: ferry.StoredTask{Kind: "get", Spec: spec}}
	if got, want := taskState(tk, now), "waiting for 10.1.2.3:8080 (attempt 3, next in 20s)"; got != want {
		t.Errorf("taskState = %q, want %q", got, want)
	}
	tk.State = "running"
	if got := taskState(tk, now); got != "running" {
		t.Errorf("taskState of a running task = %q", got)
	}
}
