package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/filestore"
	"github.com/ferryhq/ferry/server/stream"
)

// wait bounds every wait on the server.
const wait = 10 * time.Second

// server is a Handler behind a loopback HTTP server, with a client of its
// own (so no connection is shared between tests).
type server struct {
	t      *testing.T
	h      *stream.Handler
	url    string
	dir    string
	client *http.Client
}

// newServer serves cfg (Dir defaults to a temporary directory). "stored"
// replies are off unless cfg.AckEvery asks for them, so a test sees only
// the replies it expects. With h2 the server and client speak cleartext
// HTTP/2 (h2c).
func newServer(t *testing.T, cfg stream.Config, h2 bool) *server {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.AckEvery == 0 {
		cfg.AckEvery = -1
	}
	h, err := stream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	tr := &http.Transport{}
	if h2 {
		ts.Config.Protocols = new(http.Protocols)
		ts.Config.Protocols.SetHTTP1(true)
		ts.Config.Protocols.SetUnencryptedHTTP2(true)
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	// The server recovers a handler's panic (or its own) and only logs it.
	var errs logLines
	ts.Config.ErrorLog = log.New(&errs, "", 0)
	ts.Start()
	t.Cleanup(func() {
		for _, l := range errs.all() {
			if first, _, _ := strings.Cut(l, "\n"); strings.Contains(first, "panic") {
				t.Errorf("the server logged: %s", first)
			}
		}
	})
	t.Cleanup(ts.Close)
	t.Cleanup(func() { h.Close() })
	t.Cleanup(tr.CloseIdleConnections)
	return &server{t: t, h: h, url: ts.URL, dir: cfg.Dir, client: &http.Client{Transport: tr}}
}

// logLines collects what a server logs.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

func protoName(h2 bool) string {
	if h2 {
		return "HTTP/2"
	}
	return "HTTP/1.1"
}

// hdr builds request header fields from key, value pairs.
func hdr(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// resumeHdr is a PATCH's fields.
func resumeHdr(offset int, complete bool, after ...int64) map[string]string {
	m := hdr("Upload-Offset", strconv.Itoa(offset), "Upload-Complete", map[bool]string{false: "?0", true: "?1"}[complete])
	if len(after) > 0 {
		m[stream.RepliesAfterHeader] = strconv.FormatInt(after[0], 10)
	}
	return m
}

type interim struct {
	code   int
	header textproto.MIMEHeader
}

// result is a whole exchange: the response, its body and trailers, and the
// interim (1xx) responses before it.
type result struct {
	*http.Response
	body    []byte
	interim []interim
}

func (r *result) replies(t *testing.T) []reply {
	t.Helper()
	var all []reply
	for line := range bytes.Lines(r.body) {
		all = append(all, parseReply(t, line))
	}
	return all
}

// tracing records the interim responses of a request into *into.
func tracing(ctx context.Context, mu *sync.Mutex, into *[]interim) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			mu.Lock()
			*into = append(*into, interim{code, h})
			mu.Unlock()
			return nil
		},
	})
}

// do makes one request with a body known in advance and reads the whole
// response.
func (s *server) do(method, path string, fields map[string]string, body []byte) *result {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out := &result{}
	var mu sync.Mutex
	ctx = tracing(ctx, &mu, &out.interim)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range fields {
		req.Header.Set(k, v)
	}
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if out.body, err = io.ReadAll(res.Body); err != nil {
		s.t.Fatalf("%s %s: reading the response: %v", method, path, err)
	}
	out.Response = res
	mu.Lock()
	defer mu.Unlock()
	return out
}

// create starts a resumable stream with body and returns its upload URL.
func (s *server) create(name string, body []byte) string {
	s.t.Helper()
	r := s.do(http.MethodPost, "/stream/"+name, hdr("Upload-Complete", "?0"), body)
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusCreated || loc == "" {
		s.t.Fatalf("POST %s: %s, Location %q; want 201 with a Location", name, r.Status, loc)
	}
	return loc
}

// head asks for a stream's offset: the status and Upload-Offset.
func (s *server) head(loc string) (int, string) {
	s.t.Helper()
	r := s.do(http.MethodHead, loc, nil, nil)
	return r.StatusCode, r.Header.Get("Upload-Offset")
}

// duplex is a request whose body is written while its response is read.
type duplex struct {
	t       *testing.T
	body    *io.PipeWriter
	res     *http.Response
	lines   chan []byte // closed at the response's end
	err     error       // why the response ended, when not at its end; set before lines closes
	mu      sync.Mutex
	interim []interim
}

// open starts a request with a body still to be written: headers arrive
// before the body does.
func (s *server) open(method, path string, fields map[string]string) *duplex {
	s.t.Helper()
	pr, pw := io.Pipe()
	// Unblock the transport at the test's end, or the server waits on it.
	s.t.Cleanup(func() { pw.CloseWithError(errors.New("the test is over")) })
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	d := &duplex{t: s.t, body: pw, lines: make(chan []byte, 1024)}
	req, err := http.NewRequestWithContext(tracing(ctx, &d.mu, &d.interim), method, s.url+path, pr)
	if err != nil {
		s.t.Fatal(err)
	}
	req.ContentLength = -1
	for k, v := range fields {
		req.Header.Set(k, v)
	}
	type answer struct {
		res *http.Response
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		res, err := s.client.Do(req)
		ch <- answer{res, err}
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			s.t.Fatalf("%s %s: %v", method, path, a.err)
		}
		d.res = a.res
	case <-time.After(wait):
		s.t.Fatalf("%s %s: no response headers within %v while the body was open", method, path, wait)
	}
	go d.read()
	return d
}

func (d *duplex) read() {
	defer close(d.lines)
	defer d.res.Body.Close()
	br := bufio.NewReader(d.res.Body)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			d.lines <- line
		}
		if err != nil {
			if err != io.EOF {
				d.err = err
			}
			return
		}
	}
}

// write sends p as part of the body.
func (d *duplex) write(p []byte) {
	d.t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := d.body.Write(p)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			d.t.Fatalf("writing the body: %v", err)
		}
	case <-time.After(wait):
		d.t.Fatalf("writing the body: not taken within %v", wait)
	}
}

// close ends the body.
func (d *duplex) close() { d.body.Close() }

// next returns the next reply.
func (d *duplex) next() reply {
	d.t.Helper()
	select {
	case line, ok := <-d.lines:
		if !ok {
			d.t.Fatalf("the response ended (%v) while a reply was awaited", d.err)
		}
		return parseReply(d.t, line)
	case <-time.After(wait):
		d.t.Fatalf("no reply within %v", wait)
	}
	panic("unreachable")
}

// nextUntil reads replies until one satisfies ok, returning all it read.
func (d *duplex) nextUntil(ok func(reply) bool) []reply {
	d.t.Helper()
	var got []reply
	for {
		r := d.next()
		got = append(got, r)
		if ok(r) {
			return got
		}
	}
}

// rest reads the replies up to the response's end, which must come in time.
func (d *duplex) rest() []reply {
	d.t.Helper()
	var all []reply
	timeout := time.After(wait)
	for {
		select {
		case line, ok := <-d.lines:
			if !ok {
				if d.err != nil {
					d.t.Fatalf("the response failed: %v", d.err)
				}
				return all
			}
			all = append(all, parseReply(d.t, line))
		case <-timeout:
			d.t.Fatalf("the response did not end within %v", wait)
		}
	}
}

// storedAt matches the ack of offset n.
func storedAt(n int) func(reply) bool {
	return func(r reply) bool { return r.Type == "stored" && r.Offset == int64(n) }
}

// reply is one NDJSON line of a response.
type reply struct {
	Seq    int64           `json:"seq"`
	Type   string          `json:"type"`
	Offset int64           `json:"offset"`
	Name   string          `json:"name"`
	Bytes  int64           `json:"bytes"`
	SHA256 string          `json:"sha256"`
	Error  string          `json:"error"`
	Data   json.RawMessage `json:"data"`
	Line   string          `json:"-"` // without its newline
}

func parseReply(t *testing.T, line []byte) reply {
	t.Helper()
	s, ok := strings.CutSuffix(string(line), "\n")
	if !ok {
		t.Fatalf("reply %q does not end its line", line)
	}
	if !strings.HasPrefix(s, `{"seq":`) {
		t.Fatalf("reply %s does not start with its seq", s)
	}
	r := reply{Line: s}
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("reply %s: %v", s, err)
	}
	return r
}

// checkSeqs asserts replies numbered from first, without gaps or repeats.
func checkSeqs(t *testing.T, all []reply, first int64) {
	t.Helper()
	for i, r := range all {
		if r.Seq != first+int64(i) {
			t.Fatalf("reply %d is %s; want seq %d", i, r.Line, first+int64(i))
		}
	}
}

// checkDone asserts the last reply says name holds exactly data.
func checkDone(t *testing.T, all []reply, name string, data []byte) {
	t.Helper()
	if len(all) == 0 {
		t.Fatal("no replies; want done last")
	}
	last := all[len(all)-1]
	if last.Type != "done" || last.Name != name || last.Bytes != int64(len(data)) || last.SHA256 != ferrytest.SHA256Hex(data) {
		t.Fatalf("last reply %s; want done, name %s, %d bytes, sha256 %s", last.Line, name, len(data), ferrytest.SHA256Hex(data))
	}
}

// checkStored asserts the finished stream name holds data, and nothing is
// left in progress.
func checkStored(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored %s: %d bytes, %v; want the %d bytes sent", name, len(got), err, len(data))
	}
	if p := parts(t, dir); len(p) > 0 {
		t.Fatalf("part files left: %v", p)
	}
}

// parts lists the streams in progress on disk: the uploads in the store
// below dir.
func parts(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ".part", "*.info"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkProblem asserts an RFC 9457 problem with status.
func checkProblem(t *testing.T, r *result, status int) map[string]any {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: %s; want %d", r.Request.Method, r.Request.URL.Path, r.Status, status)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s %s: Content-Type %q; want a problem", r.Request.Method, r.Request.URL.Path, ct)
	}
	var p map[string]any
	if r.Request.Method != http.MethodHead {
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("problem %s: %v", r.body, err)
		}
	}
	return p
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// A plain stream is answered while its body still flows: each piece is
// acknowledged before the next is written. The replies are numbered 1, 2,
// ...; done gives the size and SHA-256; the stored stream is served back,
// ranges included. Over HTTP/1.1 (chunked, full duplex) and HTTP/2 (h2c).
func TestPlainStream(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(protoName(h2), func(t *testing.T) {
			s := newServer(t, stream.Config{AckEvery: time.Nanosecond}, h2)
			d := s.open(http.MethodPost, "/stream/rec.bin", nil)
			if want := map[bool]int{false: 1, true: 2}[h2]; d.res.ProtoMajor != want {
				t.Fatalf("response over %s; want HTTP/%d", d.res.Proto, want)
			}
			if d.res.StatusCode != http.StatusCreated || d.res.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("POST: %s, Content-Type %q; want 201 NDJSON", d.res.Status, d.res.Header.Get("Content-Type"))
			}
			if loc := d.res.Header.Get("Location"); loc != "" {
				t.Errorf("a plain stream got Location %q", loc)
			}
			input := ferrytest.Bytes(100<<10, 101)
			var got []reply
			sent := 0
			for _, end := range []int{1000, 9000, len(input)} {
				d.write(input[sent:end])
				sent = end
				// The body is still open: this ack proves replies flow
				// before it ends.
				got = append(got, d.nextUntil(storedAt(end))...)
			}
			d.close()
			got = append(got, d.rest()...)
			checkSeqs(t, got, 1)
			for _, r := range got[:len(got)-1] {
				if r.Type != "stored" {
					t.Errorf("reply %s; want only stored before done", r.Line)
				}
			}
			checkDone(t, got, "rec.bin", input)
			checkStored(t, s.dir, "rec.bin", input)

			r := s.do(http.MethodGet, "/stream/rec.bin", nil, nil)
			if r.StatusCode != http.StatusOK || !bytes.Equal(r.body, input) {
				t.Fatalf("GET: %s, %d bytes; want 200 with the stream", r.Status, len(r.body))
			}
			r = s.do(http.MethodGet, "/stream/rec.bin", hdr("Range", "bytes=1000-1999"), nil)
			if r.StatusCode != http.StatusPartialContent || !bytes.Equal(r.body, input[1000:2000]) {
				t.Fatalf("GET a range: %s, %d bytes; want 206 with bytes 1000-1999", r.Status, len(r.body))
			}
			if cr, want := r.Header.Get("Content-Range"), fmt.Sprintf("bytes 1000-1999/%d", len(input)); cr != want {
				t.Errorf("Content-Range %q; want %q", cr, want)
			}
		})
	}
}

// Names that are not one plain file name are not streams, even where such
// a file exists; a name of 200 characters is.
func TestBadNames(t *testing.T) {
	s := newServer(t, stream.Config{}, false)
	os.WriteFile(filepath.Join(s.dir, ".hidden"), []byte("secret"), 0o644)
	os.MkdirAll(filepath.Join(s.dir, "a"), 0o755)
	os.WriteFile(filepath.Join(s.dir, "a", "b"), []byte("secret"), 0o644)
	paths := []string{
		"/stream/..",
		"/stream/.hidden",
		"/stream/a/b",
		"/stream/",
		"/stream/" + strings.Repeat("a", 201),
		"/stream/%2e%2e%2fx",
		"/stream/-x",
		"/stream/a%20b",
		"/elsewhere/x",
	}
	for _, p := range paths {
		for _, m := range []string{http.MethodPost, http.MethodGet} {
			t.Run(m+" "+p[:min(len(p), 30)], func(t *testing.T) {
				var body []byte
				if m == http.MethodPost {
					body = []byte("data")
				}
				checkProblem(t, s.do(m, p, nil, body), http.StatusNotFound)
			})
		}
	}
	if p := parts(t, s.dir); len(p) > 0 {
		t.Errorf("streams started under bad names: %v", p)
	}
	long := strings.Repeat("a", 200)
	r := s.do(http.MethodPost, "/stream/"+long, nil, []byte("data"))
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("POST a 200-character name: %s; want 201", r.Status)
	}
	checkDone(t, r.replies(t), long, []byte("data"))
}

// A name stored, streaming, or held by an unfinished resumable stream is
// taken, and the stream holding it goes on unharmed.
func TestNameTaken(t *testing.T) {
	s := newServer(t, stream.Config{}, false)
	old := []byte("old")
	os.WriteFile(filepath.Join(s.dir, "taken.bin"), old, 0o644)
	busy := s.open(http.MethodPost, "/stream/busy.bin", nil)
	busy.write([]byte("first "))
	loc := s.create("paused.bin", []byte("abc"))

	for _, name := range []string{"taken.bin", "busy.bin", "paused.bin"} {
		for _, resumable := range []bool{false, true} {
			fields := map[string]string{}
			if resumable {
				fields = hdr("Upload-Complete", "?1")
			}
			r := s.do(http.MethodPost, "/stream/"+name, fields, []byte("new"))
			checkProblem(t, r, http.StatusConflict)
			if len(r.interim) > 0 {
				t.Errorf("POST %s: interim %d before the conflict", name, r.interim[0].code)
			}
		}
	}
	if got, _ := os.ReadFile(filepath.Join(s.dir, "taken.bin")); !bytes.Equal(got, old) {
		t.Errorf("taken.bin holds %q; want it untouched", got)
	}
	if code, off := s.head(loc); code != http.StatusNoContent || off != "3" {
		t.Errorf("HEAD the paused stream: %d, offset %s; want 204 at 3", code, off)
	}
	busy.write([]byte("second"))
	busy.close()
	checkDone(t, busy.rest(), "busy.bin", []byte("first second"))
	checkProblem(t, s.do(http.MethodPost, "/stream/busy.bin", nil, []byte("again")), http.StatusConflict)
}

// Other methods get 405 with the methods allowed.
func TestMethodNotAllowed(t *testing.T) {
	s := newServer(t, stream.Config{}, false)
	loc := s.create("paused.bin", []byte("abc"))
	const named, upload = "GET, HEAD, POST", "HEAD, PATCH, DELETE"
	for _, c := range []struct{ method, path, allow string }{
		{http.MethodPut, "/stream/x.bin", named},
		{http.MethodPatch, "/stream/x.bin", named},
		{http.MethodDelete, "/stream/x.bin", named},
		{http.MethodOptions, "/stream/x.bin", named},
		{http.MethodGet, loc, upload},
		{http.MethodPost, loc, upload},
		{http.MethodPut, loc, upload},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := s.do(c.method, c.path, nil, nil)
			checkProblem(t, r, http.StatusMethodNotAllowed)
			if got := r.Header.Get("Allow"); got != c.allow {
				t.Errorf("Allow %q; want %q", got, c.allow)
			}
		})
	}
	if code, off := s.head(loc); code != http.StatusNoContent || off != "3" {
		t.Errorf("HEAD the stream after: %d, offset %s; want 204 at 3", code, off)
	}
}

// A resumable stream: 104 with its upload URL, offset trailers, HEAD,
// mismatching offsets refused with the draft's problem, the rest appended
// by PATCH, and the upload URL gone once the stream is done.
func TestResumable(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(protoName(h2), func(t *testing.T) {
			s := newServer(t, stream.Config{}, h2)
			part1, part2 := ferrytest.Bytes(50<<10, 102), ferrytest.Bytes(30<<10, 103)
			r := s.do(http.MethodPost, "/stream/r.bin", hdr("Upload-Complete", "?0", "Upload-Draft-Interop-Version", "8"), part1)
			loc := r.Header.Get("Location")
			if r.StatusCode != http.StatusCreated || !regexp.MustCompile(`^/stream/r\.bin\?upload=[0-9a-f]{32}$`).MatchString(loc) {
				t.Fatalf("POST: %s, Location %q; want 201 with the upload URL", r.Status, loc)
			}
			if len(r.interim) != 1 || r.interim[0].code != 104 || r.interim[0].header.Get("Location") != loc ||
				r.interim[0].header.Get("Upload-Draft-Interop-Version") != "8" {
				t.Fatalf("interim responses %+v; want one 104 with Location %s and interop version 8", r.interim, loc)
			}
			if got, want := r.Trailer.Get("Upload-Offset"), strconv.Itoa(len(part1)); got != want {
				t.Errorf("Upload-Offset trailer %q; want %s", got, want)
			}
			if got := r.Trailer.Get("Upload-Complete"); got != "?0" {
				t.Errorf("Upload-Complete trailer %q; want ?0", got)
			}
			for _, rep := range r.replies(t) {
				if rep.Type == "done" {
					t.Fatalf("an incomplete stream replied %s", rep.Line)
				}
			}
			if _, err := os.Stat(filepath.Join(s.dir, "r.bin")); err == nil {
				t.Fatal("an incomplete stream was stored under its name")
			}

			h := s.do(http.MethodHead, loc, nil, nil)
			if h.StatusCode != http.StatusNoContent || h.Header.Get("Upload-Offset") != strconv.Itoa(len(part1)) ||
				h.Header.Get("Upload-Complete") != "?0" || h.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("HEAD: %s %v; want 204 with Upload-Offset %d, Upload-Complete ?0, no-store", h.Status, h.Header, len(part1))
			}

			for _, off := range []int{0, len(part1) - 1, len(part1) + 1} {
				r := s.do(http.MethodPatch, loc, resumeHdr(off, true), part2)
				p := checkProblem(t, r, http.StatusConflict)
				if typ, _ := p["type"].(string); !strings.HasSuffix(typ, "#mismatching-upload-offset") ||
					p["expected-offset"] != float64(len(part1)) || p["provided-offset"] != float64(off) {
					t.Errorf("PATCH at %d: problem %v; want mismatching-upload-offset, expected %d, provided %d", off, p, len(part1), off)
				}
			}
			for _, fields := range []map[string]string{
				hdr("Upload-Offset", "x", "Upload-Complete", "?1"),
				hdr("Upload-Complete", "?1"),
				hdr("Upload-Offset", strconv.Itoa(len(part1)), "Upload-Complete", "yes"),
				hdr("Upload-Offset", strconv.Itoa(len(part1))),
			} {
				checkProblem(t, s.do(http.MethodPatch, loc, fields, part2), http.StatusBadRequest)
			}

			r = s.do(http.MethodPatch, loc, resumeHdr(len(part1), true), part2)
			if r.StatusCode != http.StatusOK || r.Header.Get("Location") != loc {
				t.Fatalf("PATCH: %s, Location %q; want 200 at %s", r.Status, r.Header.Get("Location"), loc)
			}
			whole := concat(part1, part2)
			checkDone(t, r.replies(t), "r.bin", whole)
			if got, want := r.Trailer.Get("Upload-Offset"), strconv.Itoa(len(whole)); got != want {
				t.Errorf("Upload-Offset trailer %q; want %s", got, want)
			}
			if got := r.Trailer.Get("Upload-Complete"); got != "?1" {
				t.Errorf("Upload-Complete trailer %q; want ?1", got)
			}
			checkStored(t, s.dir, "r.bin", whole)

			if code, _ := s.head(loc); code != http.StatusNotFound {
				t.Errorf("HEAD a finished upload: %d; want 404", code)
			}
			checkProblem(t, s.do(http.MethodPatch, loc, resumeHdr(len(whole), true), []byte("more")), http.StatusNotFound)
		})
	}
}

// sayer reads the whole stream and emits what the test hands it, at the
// moment the test chooses: between requests, say.
type sayer struct {
	say  chan any
	said chan struct{}
}

func newSayer() *sayer { return &sayer{say: make(chan any), said: make(chan struct{})} }

func (p *sayer) Process(ctx context.Context, r io.Reader, emit func(any)) error {
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		read <- err
	}()
	for {
		select {
		case v := <-p.say:
			emit(v)
			p.said <- struct{}{}
		case err := <-read:
			return err
		}
	}
}

// emit has the processor emit v, returning once the reply is logged.
func (p *sayer) emit(t *testing.T, v any) {
	t.Helper()
	select {
	case p.say <- v:
	case <-time.After(wait):
		t.Fatal("the processor is not running")
	}
	<-p.said
}

// A stream speaks the draft's interop version its client names, as the
// upload endpoint does: interop 3 says Upload-Incomplete, and a version
// the server does not speak is refused.
func TestStreamInteropVersions(t *testing.T) {
	s := newServer(t, stream.Config{}, false)
	part1, part2 := ferrytest.Bytes(1000, 104), ferrytest.Bytes(500, 105)
	r := s.do(http.MethodPost, "/stream/v3.bin", hdr("Upload-Incomplete", "?1", "Upload-Draft-Interop-Version", "3"), part1)
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusCreated || loc == "" || r.Header.Get("Upload-Draft-Interop-Version") != "3" {
		t.Fatalf("POST at interop 3: %s, %v; want a resumable stream answered at interop 3", r.Status, r.Header)
	}
	if got := r.Trailer.Get("Upload-Incomplete"); got != "?1" || r.Trailer.Get("Upload-Complete") != "" {
		t.Errorf("trailers %v; want Upload-Incomplete ?1 only", r.Trailer)
	}
	h := s.do(http.MethodHead, loc, hdr("Upload-Draft-Interop-Version", "3"), nil)
	if h.Header.Get("Upload-Incomplete") != "?1" || h.Header.Get("Upload-Offset") != strconv.Itoa(len(part1)) {
		t.Fatalf("HEAD at interop 3: %v", h.Header)
	}
	r = s.do(http.MethodPatch, loc, hdr("Upload-Draft-Interop-Version", "3", "Upload-Offset", strconv.Itoa(len(part1)), "Upload-Incomplete", "?0"), part2)
	if r.StatusCode != http.StatusOK || r.Trailer.Get("Upload-Incomplete") != "?0" {
		t.Fatalf("PATCH at interop 3: %s, trailers %v", r.Status, r.Trailer)
	}
	checkDone(t, r.replies(t), "v3.bin", concat(part1, part2))

	for _, v := range []string{"2", "9", "x"} {
		checkProblem(t, s.do(http.MethodPost, "/stream/v.bin", hdr("Upload-Complete", "?0", "Upload-Draft-Interop-Version", v), part1), http.StatusBadRequest)
	}
	if code, _ := s.head("/stream/v.bin"); code != http.StatusNotFound {
		t.Errorf("a refused POST left a stream (HEAD %d)", code)
	}
}

// Replies made while no request runs wait for the next PATCH, which starts
// after the reply its Ferry-Replies-After names: an earlier one brings
// them again, the latest brings none of them.
func TestRepliesAfter(t *testing.T) {
	p := newSayer()
	s := newServer(t, stream.Config{Processors: func(string, *http.Request) stream.Processor { return p }}, false)
	loc := s.create("s.bin", []byte("a"))
	p.emit(t, "gap1")
	p.emit(t, "gap2")

	lines := func(r *result) []string {
		var out []string
		for _, rep := range r.replies(t) {
			out = append(out, rep.Line)
		}
		return out
	}
	steps := []struct {
		after    int64
		complete bool
		say      string // emitted after this PATCH, before the next
		want     []string
	}{
		{0, false, "gap3", []string{`{"seq":1,"data":"gap1"}`, `{"seq":2,"data":"gap2"}`}},
		{1, false, "", []string{`{"seq":2,"data":"gap2"}`, `{"seq":3,"data":"gap3"}`}},
		{3, true, "", nil}, // then only done
	}
	body := []byte("a")
	for i, st := range steps {
		more := []byte{byte('b' + i)}
		r := s.do(http.MethodPatch, loc, resumeHdr(len(body), st.complete, st.after), more)
		body = append(body, more...)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("PATCH %d: %s", i, r.Status)
		}
		got := lines(r)
		if st.complete {
			all := r.replies(t)
			checkDone(t, all, "s.bin", body)
			checkSeqs(t, all, 4)
			got = got[:len(got)-1]
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("PATCH after %d: replies %q; want %q", st.after, got, st.want)
		}
		if st.say != "" {
			p.emit(t, st.say)
		}
	}
	checkStored(t, s.dir, "s.bin", body)
}

// A HEAD takes a stream over from a request still sending: it answers
// promptly with what is stored, the old request ends with that offset in
// its trailer, and a PATCH from there completes the stream.
func TestTakeover(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		for _, holder := range []string{http.MethodPost, http.MethodPatch} {
			t.Run(protoName(h2)+" "+holder, func(t *testing.T) {
				s := newServer(t, stream.Config{AckEvery: time.Nanosecond}, h2)
				first := []byte("hello")
				var d *duplex
				var loc string
				if holder == http.MethodPost {
					d = s.open(http.MethodPost, "/stream/t.bin", hdr("Upload-Complete", "?0"))
					loc = d.res.Header.Get("Location")
				} else {
					loc = s.create("t.bin", first[:2])
					d = s.open(http.MethodPatch, loc, resumeHdr(2, false))
					first = first[2:]
				}
				if d.res.StatusCode >= 300 || loc == "" {
					t.Fatalf("%s: %s, Location %q", holder, d.res.Status, loc)
				}
				d.write(first)
				d.nextUntil(storedAt(5))

				start := time.Now()
				code, off := s.head(loc)
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("HEAD took %v while a request held the stream", took)
				}
				if code != http.StatusNoContent || off != "5" {
					t.Fatalf("HEAD: %d, offset %q; want 204 at 5", code, off)
				}
				for _, r := range d.rest() {
					if r.Type != "stored" {
						t.Errorf("the old request replied %s", r.Line)
					}
				}
				if got := d.res.Trailer.Get("Upload-Offset"); got != "5" {
					t.Errorf("the old request's Upload-Offset trailer %q; want 5", got)
				}

				r := s.do(http.MethodPatch, loc, resumeHdr(5, true), []byte(" world"))
				if r.StatusCode != http.StatusOK {
					t.Fatalf("PATCH: %s", r.Status)
				}
				checkDone(t, r.replies(t), "t.bin", []byte("hello world"))
				checkStored(t, s.dir, "t.bin", []byte("hello world"))
			})
		}
	}
}

// Over HTTP/1.1 a request cut short by a takeover leaves the rest of its
// body on its connection: that must not be read as another request.
func TestTakeoverEndsConnection(t *testing.T) {
	s := newServer(t, stream.Config{AckEvery: time.Nanosecond}, false)
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	smuggled := "POST /stream/smuggled.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
	fmt.Fprintf(c, "POST /stream/t.bin HTTP/1.1\r\nHost: x\r\nUpload-Complete: ?0\r\nContent-Length: %d\r\n\r\nhello", 5+len(smuggled))
	br := bufio.NewReader(c)
	var seen strings.Builder
	var loc string
	for !strings.Contains(seen.String(), `"offset":5`) {
		line, err := br.ReadString('\n')
		seen.WriteString(line)
		if err != nil {
			t.Fatalf("reading the response: %v; got %q", err, seen.String())
		}
		if v, ok := strings.CutPrefix(line, "Location: "); ok && loc == "" {
			loc = strings.TrimSpace(v)
		}
	}
	if code, off := s.head(loc); code != http.StatusNoContent || off != "5" {
		t.Fatalf("HEAD %q: %d, offset %q; want 204 at 5", loc, code, off)
	}
	c.Write([]byte(smuggled))
	rest, _ := io.ReadAll(br) // up to the connection's end (or the deadline)
	all := seen.String() + string(rest)
	if n := strings.Count(all, "HTTP/1.1 "); n != 2 {
		t.Errorf("%d responses on the connection; want the 104 and the 201 only:\n%s", n, all)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "smuggled.bin")); err == nil {
		t.Error("the rest of a body was served as a request")
	}
}

// A stream growing beyond MaxSize gets an error and is dropped; one of
// exactly MaxSize is stored.
func TestMaxSize(t *testing.T) {
	const max = 1000
	for _, c := range []struct {
		name      string
		resumable bool
		pieces    []int // one request each
		stored    bool
	}{
		{"plain over", false, []int{4000}, false},
		{"plain at the bound", false, []int{max}, true},
		{"resumable over in one", true, []int{max + 1}, false},
		{"resumable over on append", true, []int{600, 600}, false},
		{"resumable at the bound on append", true, []int{600, max - 600}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, stream.Config{MaxSize: max}, false)
			input := ferrytest.Bytes(sumOf(c.pieces), 104)
			var loc string
			var all []reply
			sent := 0
			for i, n := range c.pieces {
				last := i == len(c.pieces)-1
				var r *result
				switch {
				case i == 0 && !c.resumable:
					r = s.do(http.MethodPost, "/stream/m.bin", nil, input[:n])
				case i == 0:
					r = s.do(http.MethodPost, "/stream/m.bin", hdr("Upload-Complete", map[bool]string{false: "?0", true: "?1"}[last]), input[:n])
					loc = r.Header.Get("Location")
				default:
					r = s.do(http.MethodPatch, loc, resumeHdr(sent, last), input[sent:sent+n])
				}
				sent += n
				if r.StatusCode >= 300 {
					t.Fatalf("request %d: %s", i, r.Status)
				}
				all = r.replies(t)
			}
			if c.stored {
				checkDone(t, all, "m.bin", input)
				checkStored(t, s.dir, "m.bin", input)
				return
			}
			if len(all) != 1 || all[0].Type != "error" || !strings.Contains(all[0].Error, "maximum size") {
				t.Fatalf("replies %v; want one error about the maximum size", all)
			}
			if _, err := os.Stat(filepath.Join(s.dir, "m.bin")); err == nil {
				t.Error("a stream beyond MaxSize was stored")
			}
			if p := parts(t, s.dir); len(p) > 0 {
				t.Errorf("part files left: %v", p)
			}
			if loc != "" {
				if code, _ := s.head(loc); code != http.StatusNotFound {
					t.Errorf("HEAD a stream beyond MaxSize: %d; want 404", code)
				}
			}
		})
	}
}

func sumOf(ns []int) int {
	t := 0
	for _, n := range ns {
		t += n
	}
	return t
}

// An unfinished resumable stream lives while requests come within Expiry,
// and is dropped once none has come for that long.
func TestExpiry(t *testing.T) {
	const expiry = 300 * time.Millisecond
	s := newServer(t, stream.Config{Expiry: expiry}, false)
	loc := s.create("e.bin", []byte("abc"))
	// Requests spaced under Expiry keep it alive well past Expiry.
	for start := time.Now(); time.Since(start) < 2*expiry; time.Sleep(expiry / 5) {
		if code, off := s.head(loc); code != http.StatusNoContent || off != "3" {
			t.Fatalf("HEAD at %v: %d, offset %q; want 204 at 3", time.Since(start), code, off)
		}
	}
	if len(parts(t, s.dir)) != 1 {
		t.Fatal("no part file while the stream is alive")
	}
	// No HEAD while waiting: it would keep the stream alive.
	deadline := time.Now().Add(wait)
	for len(parts(t, s.dir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the part file is still there %v after the last request", wait)
		}
		time.Sleep(expiry / 10)
	}
	if code, _ := s.head(loc); code != http.StatusNotFound {
		t.Errorf("HEAD an expired stream: %d; want 404", code)
	}
	// The name is free again.
	if r := s.do(http.MethodPost, "/stream/e.bin", nil, []byte("new")); r.StatusCode != http.StatusCreated {
		t.Errorf("POST the name of an expired stream: %s; want 201", r.Status)
	}
}

// DELETE drops a stream, idle or with a request still sending: the part
// file goes, the upload URL is gone, and the name is free again.
func TestDelete(t *testing.T) {
	for _, held := range []bool{false, true} {
		t.Run(map[bool]string{false: "idle", true: "held"}[held], func(t *testing.T) {
			s := newServer(t, stream.Config{AckEvery: time.Nanosecond}, false)
			var d *duplex
			var loc string
			if held {
				d = s.open(http.MethodPost, "/stream/d.bin", hdr("Upload-Complete", "?0"))
				loc = d.res.Header.Get("Location")
				d.write([]byte("abc"))
				d.nextUntil(storedAt(3))
			} else {
				loc = s.create("d.bin", []byte("abc"))
			}
			if len(parts(t, s.dir)) != 1 {
				t.Fatal("no part file for the stream")
			}
			r := s.do(http.MethodDelete, loc, nil, nil)
			if r.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE: %s; want 204", r.Status)
			}
			if p := parts(t, s.dir); len(p) > 0 {
				t.Errorf("part files left: %v", p)
			}
			if d != nil {
				for _, r := range d.rest() {
					if r.Type != "stored" {
						t.Errorf("the deleted stream's request replied %s", r.Line)
					}
				}
			}
			if code, _ := s.head(loc); code != http.StatusNotFound {
				t.Errorf("HEAD a deleted stream: %d; want 404", code)
			}
			checkProblem(t, s.do(http.MethodPatch, loc, resumeHdr(3, true), []byte("d")), http.StatusNotFound)
			checkProblem(t, s.do(http.MethodDelete, loc, nil, nil), http.StatusNotFound)
			r = s.do(http.MethodPost, "/stream/d.bin", nil, []byte("new"))
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("POST the name of a deleted stream: %s; want 201", r.Status)
			}
			checkDone(t, r.replies(t), "d.bin", []byte("new"))
		})
	}
}

// What a processor does cannot stop a stream: an error or a panic is
// replied as {"type":"error"} and the stream is stored whole; values other
// than objects are wrapped under "data".
func TestProcessorReplies(t *testing.T) {
	input := ferrytest.Bytes(200<<10, 105)
	for _, c := range []struct {
		name string
		proc stream.ProcessorFunc
		want []string // the replies before done, whole or (ending in "*") as a prefix
	}{
		{
			name: "error at once",
			proc: func(context.Context, io.Reader, func(any)) error { return errors.New("cannot decode") },
			want: []string{`{"seq":1,"type":"error","error":"cannot decode"}`},
		},
		{
			name: "error after reading",
			proc: func(_ context.Context, r io.Reader, emit func(any)) error {
				if _, err := io.ReadFull(r, make([]byte, 10)); err != nil {
					return err
				}
				emit(map[string]any{"type": "header"})
				return errors.New("bad header")
			},
			want: []string{`{"seq":1,"type":"header"}`, `{"seq":2,"type":"error","error":"bad header"}`},
		},
		{
			name: "panic",
			proc: func(_ context.Context, r io.Reader, emit func(any)) error {
				r.Read(make([]byte, 10))
				panic("boom")
			},
			want: []string{`{"seq":1,"type":"error","error":"the processor failed: boom"}`},
		},
		{
			name: "returns early",
			proc: func(context.Context, io.Reader, func(any)) error { return nil },
		},
		{
			name: "io.EOF is no error",
			proc: func(_ context.Context, r io.Reader, emit func(any)) error {
				io.Copy(io.Discard, r)
				return io.EOF
			},
		},
		{
			name: "not objects",
			proc: func(_ context.Context, r io.Reader, emit func(any)) error {
				for _, v := range []any{"text", 42, []int{1, 2}, nil, map[string]any{}, map[string]any{"k": "v"}, func() {}} {
					emit(v)
				}
				_, err := io.Copy(io.Discard, r)
				return err
			},
			want: []string{
				`{"seq":1,"data":"text"}`,
				`{"seq":2,"data":42}`,
				`{"seq":3,"data":[1,2]}`,
				`{"seq":4,"data":null}`,
				`{"seq":5}`,
				`{"seq":6,"k":"v"}`,
				`{"seq":7,"type":"error","error":"a reply could not be encoded: *`,
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, stream.Config{Processors: func(string, *http.Request) stream.Processor { return c.proc }}, false)
			for _, name := range []string{"p1.bin", "p2.bin"} { // the second: the server still serves
				r := s.do(http.MethodPost, "/stream/"+name, nil, input)
				if r.StatusCode != http.StatusCreated {
					t.Fatalf("POST: %s", r.Status)
				}
				all := r.replies(t)
				checkSeqs(t, all, 1)
				checkDone(t, all, name, input)
				got := all[:len(all)-1]
				if len(got) != len(c.want) {
					t.Fatalf("replies before done %v; want %q", got, c.want)
				}
				for i, w := range c.want {
					if p, ok := strings.CutSuffix(w, "*"); ok && strings.HasPrefix(got[i].Line, p) || got[i].Line == w {
						continue
					}
					t.Errorf("reply %d is %s; want %s", i, got[i].Line, w)
				}
				checkStored(t, s.dir, name, input)
			}
		})
	}
}

// Close drops every stream in progress: part files go, a request still
// sending ends, and no upload URL answers.
func TestClose(t *testing.T) {
	s := newServer(t, stream.Config{AckEvery: time.Nanosecond}, false)
	d := s.open(http.MethodPost, "/stream/live.bin", nil)
	d.write([]byte("abc"))
	d.nextUntil(storedAt(3))
	loc := s.create("paused.bin", []byte("xyz"))
	if n := len(parts(t, s.dir)); n != 2 {
		t.Fatalf("%d part files; want 2", n)
	}
	s.h.Close()
	if p := parts(t, s.dir); len(p) > 0 {
		t.Errorf("part files left after Close: %v", p)
	}
	for _, r := range d.rest() {
		if r.Type != "stored" {
			t.Errorf("a dropped stream replied %s", r.Line)
		}
	}
	if code, _ := s.head(loc); code != http.StatusNotFound {
		t.Errorf("HEAD after Close: %d; want 404", code)
	}
	for _, name := range []string{"live.bin", "paused.bin"} {
		if _, err := os.Stat(filepath.Join(s.dir, name)); err == nil {
			t.Errorf("%s stored although dropped", name)
		}
	}
}

// A resumable stream left unfinished lingers until it expires, holding an
// open file and a processor: the streams in progress are bounded, in all
// and per client (as Config.ClientKey tells them apart), so that a client
// creating them and going away cannot exhaust the server. Over the bound a
// POST gets 503 (in all) or 429 (per client) with Retry-After; a stream
// that ends frees its place.
func TestStreamsInProgressBounded(t *testing.T) {
	key := func(r *http.Request) string { return r.Header.Get("X-Client") }
	s := newServer(t, stream.Config{MaxStreams: 3, MaxStreamsPerClient: 2, ClientKey: key}, false)
	from := func(client string) map[string]string { return hdr("Upload-Complete", "?0", "X-Client", client) }
	var locs []string
	for i, client := range []string{"a", "a", "b"} {
		r := s.do(http.MethodPost, "/stream/s"+strconv.Itoa(i), from(client), []byte("x"))
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("POST %d from %s: %s", i, client, r.Status)
		}
		locs = append(locs, r.Header.Get("Location"))
	}
	r := s.do(http.MethodPost, "/stream/c", from("c"), []byte("x"))
	checkProblem(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	// Freeing one place in all still leaves a at its own bound.
	if r := s.do(http.MethodDelete, locs[2], nil, nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s", r.Status)
	}
	r = s.do(http.MethodPost, "/stream/a3", from("a"), []byte("x"))
	checkProblem(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if r := s.do(http.MethodPost, "/stream/c", from("c"), []byte("x")); r.StatusCode != http.StatusCreated {
		t.Errorf("POST from c once there is room: %s", r.Status)
	}
	// A stream that completes is no longer in progress.
	if r := s.do(http.MethodPatch, locs[0], resumeHdr(1, true), []byte("y")); r.StatusCode != http.StatusOK {
		t.Fatalf("PATCH completing s0: %s", r.Status)
	}
	if r := s.do(http.MethodPost, "/stream/a4", from("a"), []byte("x")); r.StatusCode != http.StatusCreated {
		t.Errorf("POST from a once one of its streams completed: %s", r.Status)
	}
}

// Config.Storage counts each stream's bytes and a record for its file: a
// stream dropped (a plain one past the storage, a resumable one
// cancelled) gives back what it held, a finished one keeps it, and Usage
// counts the finished ones again after a restart.
func TestStorage(t *testing.T) {
	const fit = 1000
	meter := store.NewMeter(store.MeterConfig{Max: store.RecordBytes + fit})
	s := newServer(t, stream.Config{Storage: meter}, false)
	data := ferrytest.Bytes(2*fit, 106)
	// A body of unknown length, sent in one write with its end, so that
	// the server's answer is read whole even though it stops reading.
	chunked := func(path string, fields map[string]string) *result {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.url+path, struct{ io.Reader }{bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range fields {
			req.Header.Set(k, v)
		}
		res, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer res.Body.Close()
		out := &result{Response: res}
		if out.body, err = io.ReadAll(res.Body); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		all := out.replies(t)
		if len(all) == 0 || all[len(all)-1].Type != "error" || !strings.Contains(all[len(all)-1].Error, "storage") {
			t.Errorf("replies of a stream past the storage: %v, want an error naming it last", all)
		}
		return out
	}

	checkProblem(t, s.do(http.MethodPost, "/stream/sized", nil, data), http.StatusInsufficientStorage)
	chunked("/stream/plain", nil)
	if used := meter.Used(); used != 0 {
		t.Errorf("a dropped plain stream still counts %d bytes", used)
	}
	if p := parts(t, s.dir); len(p) > 0 {
		t.Errorf("a dropped plain stream left %v", p)
	}

	loc := chunked("/stream/res", hdr("Upload-Complete", "?0")).Header.Get("Location")
	if code, off := s.head(loc); code != http.StatusNoContent || off != strconv.Itoa(fit) {
		t.Errorf("HEAD a resumable stream past the storage: %d at %q, want 204 at %d", code, off, fit)
	}
	r := s.do(http.MethodPatch, loc, resumeHdr(fit, true), data[fit:])
	checkProblem(t, r, http.StatusInsufficientStorage)
	if off := r.Header.Get("Upload-Offset"); off != strconv.Itoa(fit) {
		t.Errorf("507 to an append with Upload-Offset %q, want %d", off, fit)
	}
	if r := s.do(http.MethodDelete, loc, nil, nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s", r.Status)
	}
	if used := meter.Used(); used != 0 {
		t.Errorf("a cancelled stream still counts %d bytes", used)
	}

	if r := s.do(http.MethodPost, "/stream/kept", nil, data[:fit]); r.StatusCode != http.StatusCreated {
		t.Fatalf("POST kept: %s", r.Status)
	}
	const want = store.RecordBytes + fit
	if used := meter.Used(); used != want {
		t.Errorf("a finished stream counts %d bytes, want %d", used, want)
	}
	if n, err := stream.Usage(s.dir); err != nil || n != want {
		t.Errorf("Usage = %d, %v; want %d", n, err, want)
	}
}

// By default a client is named as the rest of ferry's server names it: an
// IPv6 client by its /64, whatever address of it a request comes from.
func TestDefaultClientKey(t *testing.T) {
	h, err := stream.New(stream.Config{Dir: t.TempDir(), MaxStreamsPerClient: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	post := func(name, remote string) int {
		r := httptest.NewRequest(http.MethodPost, "/stream/"+name, strings.NewReader("x"))
		r.Header.Set("Upload-Complete", "?0") // stays in progress
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == stream.StatusUploadResumptionSupported {
			return http.StatusCreated // what follows the interim answer
		}
		return w.Code
	}
	if code := post("a", "[2001:db8:1:2::1]:1000"); code != http.StatusCreated {
		t.Fatalf("first stream: %d", code)
	}
	if code := post("b", "[2001:db8:1:2::ffff]:2000"); code != http.StatusTooManyRequests {
		t.Errorf("a second stream from the same /64: %d, want 429", code)
	}
	if code := post("c", "[2001:db8:1:3::1]:1000"); code != http.StatusCreated {
		t.Errorf("a stream from another /64: %d, want 201", code)
	}
}

// Config.MaxStreamsPerClient follows the rule of every limit: 0 is its
// default bound, negative none.
func TestDefaultMaxStreamsPerClient(t *testing.T) {
	for _, c := range []struct {
		perClient, want int
	}{{0, stream.DefaultMaxStreamsPerClient}, {-1, stream.DefaultMaxStreamsPerClient + 1}} {
		s := newServer(t, stream.Config{MaxStreamsPerClient: c.perClient}, false)
		n := 0
		for ; n < stream.DefaultMaxStreamsPerClient+1; n++ {
			r := s.do(http.MethodPost, "/stream/s"+strconv.Itoa(n), hdr("Upload-Complete", "?0"), []byte("x"))
			if r.StatusCode == http.StatusTooManyRequests {
				break
			}
			if r.StatusCode != http.StatusCreated {
				t.Fatalf("POST %d: %s", n, r.Status)
			}
		}
		if n != c.want {
			t.Errorf("MaxStreamsPerClient %d: %d streams in progress from one client, want %d", c.perClient, n, c.want)
		}
	}
}

// The streams in progress a server before this one left (it crashed or
// was killed) cannot be resumed: a new Handler removes those untouched
// for twice Expiry, which no server sharing the directory still uses, and
// leaves every other upload and file.
func TestStalePartsRemoved(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.New(filestore.Config{Dir: filepath.Join(dir, ".part")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	stale, fresh := store.NewID(), store.NewID()
	for _, id := range []string{stale, fresh} {
		up, err := st.NewUpload(ctx, store.Info{ID: id, SizeIsDeferred: true, Name: "rec.wav"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.WriteChunk(ctx, 0, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	// What the server before wrote last, three Expiries ago.
	old := time.Now().Add(-3 * stream.DefaultExpiry)
	backdate(t, filepath.Join(dir, ".part", stale+".info"), old)
	if err := os.Chtimes(filepath.Join(dir, ".part", stale+".bin"), old, old); err != nil {
		t.Fatal(err)
	}
	// Written to just now: maybe another server's, not even opened.
	recent := store.NewID()
	up, err := st.NewUpload(ctx, store.Info{ID: recent, SizeIsDeferred: true, Name: "other.wav"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.WriteChunk(ctx, 0, strings.NewReader("counted")); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, ".part", recent+".bin")
	f, err := os.OpenFile(data, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.WriteString(" and being written")
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	backdate(t, filepath.Join(dir, ".part", recent+".info"), old) // its last chunk began long ago
	if err := os.WriteFile(filepath.Join(dir, "rec.wav"), []byte("finished"), 0o644); err != nil {
		t.Fatal(err)
	}

	h, err := stream.New(stream.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	for id, removed := range map[string]bool{stale: true, fresh: false} {
		_, err := st.GetUpload(ctx, id)
		if gone := errors.Is(err, store.ErrNotFound); gone != removed {
			t.Errorf("upload %s: removed %v (%v), want %v", id, gone, err, removed)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rec.wav")); err != nil {
		t.Errorf("a finished stream: %v", err)
	}
	if got, err := os.ReadFile(data); string(got) != "counted and being written" {
		t.Errorf("the data of an upload written to lately is %q (%v), want it untouched", got, err)
	}
}

// backdate makes the filestore info file at path say the upload was last
// changed at at.
func backdate(t *testing.T, path string, at time.Time) {
	t.Helper()
	var rec map[string]any
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err == nil {
		rec["updated_at"] = at.UTC().Format(time.RFC3339Nano)
		b, err = json.Marshal(rec)
	}
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}
