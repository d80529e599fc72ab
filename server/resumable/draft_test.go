package resumable_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server/resumable"
)

// draftFields are the request and response fields of one interop version.
type draftFields struct {
	version     string // Upload-Draft-Interop-Version: N
	incomplete  string // request field: more content follows
	complete    string // request field: this request completes the upload
	field       string // name of the completeness field in responses
	yes, no     string // its values for complete and incomplete uploads
	contentType string // of appends; "" sends none
}

func fieldsFor(v int) draftFields {
	f := draftFields{
		version:    fmt.Sprintf("Upload-Draft-Interop-Version: %d", v),
		incomplete: "Upload-Complete: ?0", complete: "Upload-Complete: ?1",
		field: "Upload-Complete", yes: "?1", no: "?0",
	}
	if v == 3 {
		f.incomplete, f.complete = "Upload-Incomplete: ?1", "Upload-Incomplete: ?0"
		f.field, f.yes, f.no = "Upload-Incomplete", "?0", "?1"
	}
	if v >= 6 {
		f.contentType = "Content-Type: application/partial-upload"
	}
	return f
}

func (f draftFields) appendHeaders(offset int, complete bool) []string {
	h := []string{f.version, fmt.Sprintf("Upload-Offset: %d", offset), f.incomplete}
	if complete {
		h[2] = f.complete
	}
	if f.contentType != "" {
		h = append(h, f.contentType)
	}
	return h
}

// limitKey is the Upload-Limit member for the remaining lifetime, or ""
// before Upload-Limit existed.
func limitKey(v int) string {
	switch {
	case v < 6:
		return ""
	case v == 6:
		return "expires="
	default:
		return "max-age="
	}
}

// The draft's flow in every interop version: creation with part of the
// content and Upload-Complete: ?0, the 104 interim response with the
// upload's URL, offset retrieval, appends, and completion with ?1.
func TestDraftFlows(t *testing.T) {
	for _, v := range resumable.InteropVersions {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			run(t, resumable.Config{CheckpointBytes: 64 << 10}, func(t *testing.T, e *env) {
				f := fieldsFor(v)
				data := ferrytest.Bytes(400000, uint64(v))
				r := e.do(t, "POST", "/files/", data[:100000], f.version, f.incomplete, "Upload-Length: 400000",
					`Content-Disposition: inline; filename="draft.bin"`, "Content-Type: application/x-test").expect(t, 201)
				url := r.Header.Get("Location")
				r.header(t, "Upload-Offset", "100000")
				r.header(t, f.field, f.no)
				r.header(t, "Upload-Draft-Interop-Version", fmt.Sprint(v))
				r.header(t, "Tus-Resumable", "")
				if len(r.interim) == 0 || r.interim[0].code != 104 {
					t.Fatalf("interim responses %v: want a 104 first", r.interim)
				}
				first := r.interim[0].header
				if first.Get("Location") != url || first.Get("Upload-Draft-Interop-Version") != fmt.Sprint(v) {
					t.Errorf("104 headers %v: want Location %s and the interop version", first, url)
				}
				if key := limitKey(v); key != "" && !strings.Contains(first.Get("Upload-Limit"), key) {
					t.Errorf("104 Upload-Limit %q: want %s", first.Get("Upload-Limit"), key)
				}
				checkProgress(t, v, r.interim[1:], 0)

				h := e.do(t, "HEAD", url, nil, f.version).expect(t, 204)
				h.header(t, "Upload-Offset", "100000")
				h.header(t, f.field, f.no)
				h.header(t, "Upload-Length", "400000")
				h.header(t, "Cache-Control", "no-store")
				if key := limitKey(v); key == "" {
					h.header(t, "Upload-Limit", "")
				} else if !strings.HasPrefix(h.Header.Get("Upload-Limit"), key) {
					t.Errorf("HEAD Upload-Limit %q: want %s...", h.Header.Get("Upload-Limit"), key)
				}

				p := e.do(t, "PATCH", url, data[100000:250000], f.appendHeaders(100000, false)...).expect(t, 204)
				p.header(t, "Upload-Offset", "250000")
				p.header(t, f.field, f.no)
				checkProgress(t, v, p.interim, 100000)

				p = e.do(t, "PATCH", url, data[250000:], f.appendHeaders(250000, true)...).expect(t, 204)
				p.header(t, "Upload-Offset", "400000")
				p.header(t, f.field, f.yes)

				e.do(t, "HEAD", url, nil, f.version).expect(t, 204).header(t, f.field, f.yes)
				// tus sees the same upload.
				e.do(t, "HEAD", url, nil, tus).expect(t, 200).header(t, "Upload-Offset", "400000")
				g := e.do(t, "GET", url, nil).expect(t, 200)
				mustEqual(t, "download", g.body, data)
				g.header(t, "Content-Disposition", "attachment; filename=draft.bin")
				g.header(t, "Content-Type", "application/octet-stream") // not a type shown inline
			})
		})
	}
}

// checkProgress checks the 104 progress responses of one request (interop
// 5 on): each carries a durable Upload-Offset at a checkpoint and, as in
// the draft's creation example, no Location.
func checkProgress(t *testing.T, v int, interims []interim, start int) {
	t.Helper()
	if v < 5 {
		if len(interims) > 0 {
			t.Errorf("interop %d got %d progress responses; they start with interop 5", v, len(interims))
		}
		return
	}
	if len(interims) == 0 {
		t.Fatalf("interop %d: no 104 progress response for content over one checkpoint", v)
	}
	for i, in := range interims {
		want := fmt.Sprint(start + (i+1)*(64<<10))
		if in.code != 104 || in.header.Get("Upload-Offset") != want {
			t.Errorf("progress %d: %d with Upload-Offset %q, want 104 with %s", i, in.code, in.header.Get("Upload-Offset"), want)
		}
		if loc := in.header.Get("Location"); loc != "" {
			t.Errorf("progress %d: Location %q", i, loc)
		}
	}
}

// Optimistic creation: all content in the first request, with
// Upload-Complete: ?1 — also without an interop version, as clients of the
// final RFC will send it.
func TestDraftSingleRequest(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(123456, 7)
		for _, hdrs := range [][]string{{"Upload-Draft-Interop-Version: 6", "Upload-Complete: ?1"}, {"Upload-Complete: ?1"}} {
			r := e.do(t, "POST", "/files/", data, hdrs...).expect(t, 201)
			r.header(t, "Upload-Complete", "?1")
			r.header(t, "Upload-Offset", "123456")
			if len(r.interim) != 1 || r.interim[0].header.Get("Location") != r.Header.Get("Location") {
				t.Errorf("interim responses %v: want one 104 with Location %s", r.interim, r.Header.Get("Location"))
			}
			mustEqual(t, "download", e.download(t, r.Header.Get("Location")), data)
			h := e.do(t, "HEAD", r.Header.Get("Location"), nil, "Upload-Draft-Interop-Version: 8").expect(t, 204)
			h.header(t, "Upload-Complete", "?1")
			h.header(t, "Upload-Length", "123456")
			h.header(t, "Upload-Limit", "") // nothing limits a finished upload here
		}
	})
}

// The length can stay unknown until the request that completes the upload.
func TestDraftUnknownLength(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		f := fieldsFor(resumable.LatestInterop)
		data := ferrytest.Bytes(90000, 8)
		r := e.do(t, "POST", "/files/", nil, f.version, f.incomplete).expect(t, 201)
		url := r.Header.Get("Location")
		r.header(t, "Upload-Offset", "0")
		e.do(t, "HEAD", url, nil, f.version).expect(t, 204).header(t, "Upload-Length", "")
		e.do(t, "PATCH", url, data[:40000], f.appendHeaders(0, false)...).expect(t, 204)
		// Chunked: no Content-Length, so ?1 declares the length at the end.
		e.do(t, "PATCH", url, struct{ ioReader }{strings.NewReader(string(data[40000:]))}, f.appendHeaders(40000, true)...).expect(t, 204).header(t, "Upload-Complete", "?1")
		h := e.do(t, "HEAD", url, nil, f.version).expect(t, 204)
		h.header(t, "Upload-Length", "90000")
		h.header(t, "Upload-Complete", "?1")
		mustEqual(t, "download", e.download(t, url), data)
	})
}

type ioReader interface{ Read([]byte) (int, error) }

func TestDraftLengthChecks(t *testing.T) {
	e := newEnv(t, false, resumable.Config{})
	f := fieldsFor(8)
	// Upload-Length and a complete Content-Length must agree.
	p := e.do(t, "POST", "/files/", "12345", f.version, f.complete, "Upload-Length: 10").expect(t, 400).problem(t)
	if p["type"] != "https://iana.org/assignments/http-problem-types#inconsistent-upload-length" {
		t.Errorf("problem %v", p)
	}
	url := e.do(t, "POST", "/files/", "12345", f.version, f.incomplete, "Upload-Length: 10").expect(t, 201).Header.Get("Location")
	e.do(t, "PATCH", url, "67", append(f.appendHeaders(5, false), "Upload-Length: 11")...).expect(t, 400).problem(t)
	// ?1 with content that ends before the length.
	e.do(t, "PATCH", url, "67", f.appendHeaders(5, true)...).expect(t, 400).problem(t)
	e.do(t, "HEAD", url, nil, f.version).expect(t, 204).header(t, "Upload-Offset", "5")
	e.do(t, "PATCH", url, "67890", f.appendHeaders(5, true)...).expect(t, 204).header(t, "Upload-Complete", "?1")
	// A complete upload takes no more content.
	p = e.do(t, "PATCH", url, "x", f.appendHeaders(10, false)...).expect(t, 400).problem(t)
	if p["type"] != "https://iana.org/assignments/http-problem-types#completed-upload" {
		t.Errorf("problem %v", p)
	}
	// An empty ?1 append to it is harmless.
	e.do(t, "PATCH", url, nil, f.appendHeaders(10, true)...).expect(t, 204).header(t, "Upload-Complete", "?1")
}

func TestDraftContentDigest(t *testing.T) {
	e := newEnv(t, false, resumable.Config{})
	f := fieldsFor(6)
	url := e.do(t, "POST", "/files/", nil, f.version, f.incomplete).expect(t, 201).Header.Get("Location")
	bad := sha256.Sum256([]byte("other"))
	p := e.do(t, "PATCH", url, "hello", append(f.appendHeaders(0, true), "Content-Digest: sha-256=:"+base64.StdEncoding.EncodeToString(bad[:])+":")...).expect(t, 400).problem(t)
	if p["code"] != "content-digest-mismatch" {
		t.Errorf("problem %v", p)
	}
	e.do(t, "HEAD", url, nil, f.version).expect(t, 204).header(t, "Upload-Offset", "0")
	good := sha256.Sum256([]byte("hello"))
	e.do(t, "PATCH", url, "hello", append(f.appendHeaders(0, true), "Content-Digest: sha-256=:"+base64.StdEncoding.EncodeToString(good[:])+":")...).expect(t, 204)
}

// A Repr-Digest given at creation is checked once the upload is complete.
func TestReprDigest(t *testing.T) {
	e := newEnv(t, false, resumable.Config{})
	data := []byte("the whole representation")
	sum := sha256.Sum256(data)
	good := "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
	url := e.create(t, len(data), "Repr-Digest: "+good)
	e.patch(t, url, 0, data[:5]).expect(t, 204)
	e.patch(t, url, 5, data[5:]).expect(t, 204)

	url = e.create(t, len(data), "Repr-Digest: sha-512=:"+base64.StdEncoding.EncodeToString(make([]byte, 64))+":")
	p := e.patch(t, url, 0, data).expect(t, 400).problem(t)
	if p["code"] != "repr-digest-mismatch" {
		t.Errorf("problem %v", p)
	}
	e.do(t, "HEAD", url, nil, tus).expect(t, 404)
}

// limitSeconds returns the lifetime member of an Upload-Limit value.
func limitSeconds(t *testing.T, v int, limit string) int {
	t.Helper()
	for m := range strings.SplitSeq(limit, ",") {
		if val, ok := strings.CutPrefix(strings.TrimSpace(m), limitKey(v)); ok {
			n, err := strconv.Atoi(val)
			if err != nil {
				t.Fatalf("Upload-Limit %q: %v", limit, err)
			}
			return n
		}
	}
	t.Fatalf("Upload-Limit %q has no %s", limit, limitKey(v))
	return 0
}

// A new upload has its whole lifetime ahead of it: the draft's 104 and 201
// say so in Upload-Limit, and tus's 201 in an Upload-Expires a day ahead.
func TestNewUploadLifetime(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, false, resumable.Config{Now: clk.Now})
	const day = 86400
	for _, v := range []int{6, 7, 8} {
		f := fieldsFor(v)
		r := e.do(t, "POST", "/files/", "abc", f.version, f.incomplete, "Upload-Length: 10").expect(t, 201)
		if len(r.interim) == 0 {
			t.Fatalf("interop %d: no 104", v)
		}
		for what, limit := range map[string]string{"104": r.interim[0].header.Get("Upload-Limit"), "201": r.Header.Get("Upload-Limit")} {
			if n := limitSeconds(t, v, limit); n < day-60 || n > day+60 {
				t.Errorf("interop %d: %s Upload-Limit %q: want about %d seconds left", v, what, limit, day)
			}
		}
	}
	r := e.do(t, "POST", "/files/", nil, tus, "Upload-Length: 10").expect(t, 201)
	exp, err := http.ParseTime(r.Header.Get("Upload-Expires"))
	if want := clk.Now().Add(24 * time.Hour); err != nil || exp.Before(want.Add(-time.Minute)) || exp.After(want.Add(time.Minute)) {
		t.Errorf("tus 201 Upload-Expires %q (%v): want about %v", r.Header.Get("Upload-Expires"), err, want.UTC().Format(http.TimeFormat))
	}
	// A finished partial upload still expires, and says so.
	p := e.partial(t, []byte("ab"), 2)
	if e.do(t, "HEAD", p, nil, tus).expect(t, 200).Header.Get("Upload-Expires") == "" {
		t.Error("HEAD of a finished partial upload: no Upload-Expires")
	}
	if limit := e.do(t, "HEAD", p, nil, "Upload-Draft-Interop-Version: 8").expect(t, 204).Header.Get("Upload-Limit"); !strings.Contains(limit, "max-age=") {
		t.Errorf("draft HEAD of a finished partial upload: Upload-Limit %q, want its max-age", limit)
	}
}

// A completeness field that is not a structured Boolean is no field at all
// (the draft ignores it), and an append or a creation needs one: 400, and
// nothing is stored.
func TestDraftCompleteNotBoolean(t *testing.T) {
	e := newEnv(t, false, resumable.Config{})
	for _, v := range resumable.InteropVersions {
		f := fieldsFor(v)
		name, _, _ := strings.Cut(f.complete, ":")
		url := e.do(t, "POST", "/files/", nil, f.version, f.incomplete).expect(t, 201).Header.Get("Location")
		for _, bad := range []string{"yes", "1", "true", "?", "?1, ?1"} {
			h := append(f.appendHeaders(0, false)[:2:2], name+": "+bad)
			if f.contentType != "" {
				h = append(h, f.contentType)
			}
			e.do(t, "PATCH", url, "abc", h...).expect(t, 400).problem(t)
			e.do(t, "POST", "/files/", "abc", f.version, name+": "+bad).expect(t, 400).problem(t)
		}
		e.do(t, "HEAD", url, nil, f.version).expect(t, 204).header(t, "Upload-Offset", "0")
	}
	e.do(t, "POST", "/files/", "abc", "Upload-Complete: yes").expect(t, 400).problem(t)
	if ids, _ := e.store.List(t.Context()); len(ids) != len(resumable.InteropVersions) {
		t.Errorf("%d uploads stored, want only the %d valid ones", len(ids), len(resumable.InteropVersions))
	}
}

// A completing append (Upload-Complete: ?1) whose content ends early
// keeps what arrived and answers the offset it reached, as any append cut
// short does; it does not complete the upload, of a length known or not.
func TestDraftAppendCutShort(t *testing.T) {
	for _, length := range []string{"", "Upload-Length: 1000"} {
		e := newEnv(t, false, resumable.Config{})
		f := fieldsFor(resumable.LatestInterop)
		hdrs := []string{f.version, f.incomplete}
		if length != "" {
			hdrs = append(hdrs, length)
		}
		url := e.do(t, "POST", "/files/", nil, hdrs...).expect(t, 201).Header.Get("Location")
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Length: 1000\r\n\r\nsome",
			strings.TrimPrefix(url, e.url), strings.Join(f.appendHeaders(0, true), "\r\n"))
		conn.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != "4" || resp.Header.Get(f.field) != f.no {
			t.Errorf("%q: a completing append cut short after 4 bytes: %s, Upload-Offset %q, %s %q; want 204 at 4, incomplete",
				length, resp.Status, resp.Header.Get("Upload-Offset"), f.field, resp.Header.Get(f.field))
		}
		h := e.do(t, "HEAD", url, nil, f.version).expect(t, 204)
		h.header(t, "Upload-Offset", "4")
		h.header(t, f.field, f.no)
	}
}
