package resumable_test

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/memstore"
)

// plainStore is a store with no optional capability but those it names.
type plainStore struct{ store.Store }

func (p plainStore) DeclareLength(ctx context.Context, u store.Upload, n int64) error {
	return p.Store.(store.LengthDeclarer).DeclareLength(ctx, u, n)
}

// newServerFor serves h at /files/ on loopback and returns the base URL.
func newServerFor(t *testing.T, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/files/", h)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestOptions(t *testing.T) {
	run(t, resumable.Config{MaxSize: 1 << 30}, func(t *testing.T, e *env) {
		r := e.do(t, "OPTIONS", "/files/", nil).expect(t, 204)
		r.header(t, "Tus-Version", "1.0.0")
		r.header(t, "Tus-Resumable", "1.0.0")
		r.header(t, "Tus-Max-Size", "1073741824")
		r.header(t, "Tus-Checksum-Algorithm", "sha1,sha256,sha512,md5")
		r.header(t, "Tus-Extension", "creation,creation-with-upload,creation-defer-length,termination,checksum,expiration,concatenation,concatenation-unfinished")
		r.header(t, "Accept-Patch", "application/partial-upload, application/offset+octet-stream")
		r.header(t, "Upload-Limit", "max-size=1073741824, max-age=86400")
		// The draft dialect gets its version's limits.
		r = e.do(t, "OPTIONS", "/files/", nil, "Upload-Draft-Interop-Version: 6").expect(t, 204)
		r.header(t, "Upload-Limit", "max-size=1073741824, expires=86400")
		r.header(t, "Upload-Draft-Interop-Version", "6")
	})
}

// The whole tus core flow: create with metadata, HEAD, PATCH in chunks,
// HEAD again, download.
func TestTusFlow(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(300000, 1)
		url := e.create(t, len(data), "Upload-Metadata: filename "+b64("report.pdf")+",filetype "+b64("application/pdf")+",empty")
		r := e.do(t, "HEAD", url, nil, tus).expect(t, 200)
		r.header(t, "Upload-Offset", "0")
		r.header(t, "Upload-Length", "300000")
		r.header(t, "Cache-Control", "no-store")
		r.header(t, "Tus-Resumable", "1.0.0")
		r.header(t, "Upload-Metadata", "empty,filename "+b64("report.pdf")+",filetype "+b64("application/pdf"))
		if exp, err := http.ParseTime(r.Header.Get("Upload-Expires")); err != nil || time.Until(exp) < 23*time.Hour {
			t.Errorf("Upload-Expires %q: want about 24h ahead (%v)", r.Header.Get("Upload-Expires"), err)
		}

		off := 0
		for _, n := range []int{1, 100000, 99999, 100000} {
			r := e.patch(t, url, off, data[off:off+n]).expect(t, 204)
			off += n
			r.header(t, "Upload-Offset", fmt.Sprint(off))
			r.header(t, "Tus-Resumable", "1.0.0")
		}
		r = e.do(t, "HEAD", url, nil, tus).expect(t, 200)
		r.header(t, "Upload-Offset", "300000")
		r.header(t, "Upload-Expires", "") // finished uploads do not expire

		got := e.do(t, "GET", url, nil).expect(t, 200)
		mustEqual(t, "download", got.body, data)
		got.header(t, "Content-Type", "application/octet-stream") // not a type shown inline
		got.header(t, "Content-Disposition", `attachment; filename=report.pdf`)
		// Ranges, for resuming the download.
		part := e.do(t, "GET", url, nil, "Range: bytes=1000-1999").expect(t, 206)
		mustEqual(t, "range", part.body, data[1000:2000])
		part.header(t, "Content-Range", "bytes 1000-1999/300000")
		// Appending to a finished upload changes nothing.
		e.patch(t, url, 300000, nil).expect(t, 204).header(t, "Upload-Offset", "300000")
		e.patch(t, url, 300000, []byte("x")).expect(t, 413)
	})
}

func TestTusCreationWithUpload(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(70000, 2)
		r := e.do(t, "POST", "/files/", data[:30000], tus, "Upload-Length: 70000", "Content-Type: application/offset+octet-stream").expect(t, 201)
		r.header(t, "Upload-Offset", "30000")
		url := r.Header.Get("Location")
		e.patch(t, url, 30000, data[30000:]).expect(t, 204).header(t, "Upload-Offset", "70000")
		mustEqual(t, "download", e.download(t, url), data)

		// All of it at once finishes the upload.
		r = e.do(t, "POST", "/files/", data, tus, "Upload-Length: 70000", "Content-Type: application/offset+octet-stream").expect(t, 201)
		r.header(t, "Upload-Offset", "70000")
		mustEqual(t, "download", e.download(t, r.Header.Get("Location")), data)

		// A body without the tus media type is not content.
		r = e.do(t, "POST", "/files/", "ignored", tus, "Upload-Length: 7").expect(t, 201)
		r.header(t, "Upload-Offset", "")
		e.do(t, "HEAD", r.Header.Get("Location"), nil, tus).expect(t, 200).header(t, "Upload-Offset", "0")

		// An empty upload is finished at once.
		r = e.do(t, "POST", "/files/", nil, tus, "Upload-Length: 0").expect(t, 201)
		mustEqual(t, "empty download", e.download(t, r.Header.Get("Location")), nil)
	})
}

func TestTusDeferLength(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(50000, 3)
		r := e.do(t, "POST", "/files/", nil, tus, "Upload-Defer-Length: 1").expect(t, 201)
		url := r.Header.Get("Location")
		h := e.do(t, "HEAD", url, nil, tus).expect(t, 200)
		h.header(t, "Upload-Defer-Length", "1")
		h.header(t, "Upload-Length", "")
		e.patch(t, url, 0, data[:20000]).expect(t, 204).header(t, "Upload-Offset", "20000")
		e.do(t, "GET", url, nil).expect(t, 409).header(t, "Upload-Offset", "20000")
		// The length comes with a later PATCH; it cannot be below the offset.
		e.patch(t, url, 20000, data[20000:], "Upload-Length: 100").expect(t, 400)
		e.patch(t, url, 20000, data[20000:], "Upload-Length: 50000").expect(t, 204).header(t, "Upload-Offset", "50000")
		h = e.do(t, "HEAD", url, nil, tus).expect(t, 200)
		h.header(t, "Upload-Length", "50000")
		h.header(t, "Upload-Defer-Length", "")
		mustEqual(t, "download", e.download(t, url), data)
	})
}

func TestTusTermination(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		url := e.create(t, 10)
		e.patch(t, url, 0, []byte("12345")).expect(t, 204)
		e.do(t, "DELETE", url, nil, tus).expect(t, 204)
		e.do(t, "HEAD", url, nil, tus).expect(t, 404)
		e.patch(t, url, 5, []byte("67890")).expect(t, 404).problem(t)
		e.do(t, "DELETE", url, nil, tus).expect(t, 404)
		e.do(t, "GET", url, nil).expect(t, 404)
	})
}

func TestTusChecksum(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(90000, 4)
		url := e.create(t, len(data))
		c1 := data[:30000]
		s1 := sha1.Sum(c1)
		e.patch(t, url, 0, c1, "Upload-Checksum: sha1 "+base64.StdEncoding.EncodeToString(s1[:])).expect(t, 204).header(t, "Upload-Offset", "30000")

		// A mismatch is 460 and appends nothing.
		bad := sha256.Sum256([]byte("something else"))
		r := e.patch(t, url, 30000, data[30000:60000], "Upload-Checksum: sha256 "+base64.StdEncoding.EncodeToString(bad[:])).expect(t, 460)
		if p := r.problem(t); p["code"] != "checksum-mismatch" {
			t.Errorf("problem %v", p)
		}
		e.do(t, "HEAD", url, nil, tus).expect(t, 200).header(t, "Upload-Offset", "30000")

		s2 := sha256.Sum256(data[30000:60000])
		e.patch(t, url, 30000, data[30000:60000], "Upload-Checksum: sha256 "+base64.StdEncoding.EncodeToString(s2[:])).expect(t, 204).header(t, "Upload-Offset", "60000")
		s3 := md5.Sum(data[60000:])
		e.patch(t, url, 60000, data[60000:], "Upload-Checksum: md5 "+base64.StdEncoding.EncodeToString(s3[:])).expect(t, 204).header(t, "Upload-Offset", "90000")
		mustEqual(t, "download", e.download(t, url), data)

		// RFC 9530 Content-Digest works in tus too, with 460 on a mismatch.
		url = e.create(t, 5)
		e.patch(t, url, 0, []byte("hello"), "Content-Digest: sha-256=:"+base64.StdEncoding.EncodeToString(bad[:])+":").expect(t, 460)
		good := sha256.Sum256([]byte("hello"))
		e.patch(t, url, 0, []byte("hello"), "Content-Digest: sha-256=:"+base64.StdEncoding.EncodeToString(good[:])+":, unknown=:AAAA:").expect(t, 204)
	})
}

// Stores without all-or-nothing appends get checksummed chunks spooled.
func TestChecksumSpooled(t *testing.T) {
	e := newEnv(t, false, resumable.Config{TempDir: t.TempDir()})
	// Wrap the store so that it hides its AtomicWriter.
	h, err := resumable.New(resumable.Config{Store: plainStore{e.store}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := newServerFor(t, h)
	e.url = srv
	data := []byte("0123456789")
	url := e.create(t, 10)
	bad := sha1.Sum([]byte("nope"))
	e.patch(t, url, 0, data, "Upload-Checksum: sha1 "+base64.StdEncoding.EncodeToString(bad[:])).expect(t, 460)
	e.do(t, "HEAD", url, nil, tus).expect(t, 200).header(t, "Upload-Offset", "0")
	good := sha1.Sum(data)
	e.patch(t, url, 0, data, "Upload-Checksum: sha1 "+base64.StdEncoding.EncodeToString(good[:])).expect(t, 204).header(t, "Upload-Offset", "10")
}

func TestTusResumableVersion(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		for _, h := range [][]string{{"Tus-Resumable: 0.2.2"}, {}} {
			r := e.do(t, "POST", "/files/", nil, append(h, "Upload-Length: 5")...).expect(t, 412)
			r.header(t, "Tus-Version", "1.0.0")
			r.problem(t)
		}
		url := e.create(t, 5)
		e.do(t, "PATCH", url, "abc", "Tus-Resumable: 2.0.0", "Content-Type: application/offset+octet-stream", "Upload-Offset: 0").expect(t, 412)
		e.do(t, "HEAD", url, nil, "Tus-Resumable: 2.0.0").expect(t, 412)
		// HEAD and GET without the header are let through.
		e.do(t, "HEAD", url, nil).expect(t, 200)
	})
}

func TestOffsetMismatch(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		url := e.create(t, 100)
		e.patch(t, url, 0, make([]byte, 10)).expect(t, 204)
		r := e.patch(t, url, 5, make([]byte, 10)).expect(t, 409)
		r.header(t, "Upload-Offset", "10")
		p := r.problem(t)
		if p["type"] != "https://iana.org/assignments/http-problem-types#mismatching-upload-offset" ||
			p["expected-offset"] != float64(10) || p["provided-offset"] != float64(5) {
			t.Errorf("409 problem = %v", p)
		}
		// The draft dialect says whether the upload is complete as well.
		r = e.do(t, "PATCH", url, "x", "Upload-Draft-Interop-Version: 6", "Content-Type: application/partial-upload", "Upload-Offset: 11", "Upload-Complete: ?0").expect(t, 409)
		r.header(t, "Upload-Offset", "10")
		r.header(t, "Upload-Complete", "?0")
		if p := r.problem(t); p["expected-offset"] != float64(10) || p["provided-offset"] != float64(11) {
			t.Errorf("draft 409 problem = %v", p)
		}
	})
}

func TestMaxSize(t *testing.T) {
	run(t, resumable.Config{MaxSize: 1000}, func(t *testing.T, e *env) {
		e.do(t, "POST", "/files/", nil, tus, "Upload-Length: 1001").expect(t, 413).problem(t)
		e.create(t, 1000)
		// A deferred length can grow no further than the limit.
		url := e.do(t, "POST", "/files/", nil, tus, "Upload-Defer-Length: 1").expect(t, 201).Header.Get("Location")
		e.patch(t, url, 0, make([]byte, 1001)).expect(t, 413)
		e.patch(t, url, 0, make([]byte, 600)).expect(t, 204)
		e.patch(t, url, 600, make([]byte, 600)).expect(t, 413)
		e.patch(t, url, 600, make([]byte, 1), "Upload-Length: 1001").expect(t, 413)
		// Without Content-Length the content is cut at the limit.
		r := e.do(t, "PATCH", url, struct{ io.Reader }{strings.NewReader(strings.Repeat("z", 500))},
			tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: 600").expect(t, 413)
		r.header(t, "Upload-Offset", "1000")

		// A draft 413 names the limit.
		d := e.do(t, "POST", "/files/", "x", "Upload-Draft-Interop-Version: 8", "Upload-Complete: ?0", "Upload-Length: 5000").expect(t, 413)
		d.header(t, "Upload-Limit", "max-size=1000, max-age=86400")
		d.problem(t)
	})
}

func TestMalformedHeaders(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		upload  bool // send to an upload's URL rather than /files/
		status  int
		headers []string
		body    string
	}{
		{"offset not a number", "PATCH", true, 400, []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: abc"}, "x"},
		{"negative offset", "PATCH", true, 400, []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: -1"}, "x"},
		{"missing offset", "PATCH", true, 400, []string{tus, "Content-Type: application/offset+octet-stream"}, "x"},
		{"draft offset not an integer", "PATCH", true, 400, []string{"Upload-Draft-Interop-Version: 6", "Content-Type: application/partial-upload", "Upload-Offset: 1.5", "Upload-Complete: ?0"}, "x"},
		{"length not a number", "POST", false, 400, []string{tus, "Upload-Length: ten"}, ""},
		{"negative length", "POST", false, 400, []string{tus, "Upload-Length: -5"}, ""},
		{"no length", "POST", false, 400, []string{tus}, ""},
		{"defer length not 1", "POST", false, 400, []string{tus, "Upload-Defer-Length: 2"}, ""},
		{"length and defer", "POST", false, 400, []string{tus, "Upload-Length: 5", "Upload-Defer-Length: 1"}, ""},
		{"metadata key with a space value", "POST", false, 400, []string{tus, "Upload-Length: 5", "Upload-Metadata: a b c"}, ""},
		{"metadata not base64", "POST", false, 400, []string{tus, "Upload-Length: 5", "Upload-Metadata: key !!!"}, ""},
		{"metadata repeated key", "POST", false, 400, []string{tus, "Upload-Length: 5", "Upload-Metadata: a,a"}, ""},
		{"checksum without sum", "PATCH", true, 400, []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0", "Upload-Checksum: sha1"}, "x"},
		{"checksum algorithm", "PATCH", true, 400, []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0", "Upload-Checksum: crc32 AAAAAA=="}, "x"},
		{"checksum not base64", "PATCH", true, 400, []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0", "Upload-Checksum: sha1 ###"}, "x"},
		{"content-digest not a dictionary", "PATCH", true, 400, []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0", "Content-Digest: sha-256=="}, "x"},
		{"concat empty final", "POST", false, 400, []string{tus, "Upload-Concat: final;"}, ""},
		{"concat unknown", "POST", false, 400, []string{tus, "Upload-Length: 5", "Upload-Concat: whatever"}, ""},
		{"concat foreign url", "POST", false, 400, []string{tus, "Upload-Concat: final;http://example.com/elsewhere/abc"}, ""},
		{"interop version", "POST", false, 400, []string{"Upload-Draft-Interop-Version: 99", "Upload-Complete: ?1"}, "x"},
		{"content-disposition", "POST", false, 400, []string{"Upload-Draft-Interop-Version: 8", "Upload-Complete: ?1", "Content-Disposition: attachment; filename=\"unterminated"}, "x"},
		{"repr-digest", "POST", false, 400, []string{tus, "Upload-Length: 5", "Repr-Digest: sha-256=:AAAA:"}, ""},
		{"offset twice", "PATCH", true, 400, []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0", "Upload-Offset: 5"}, "x"},
		{"draft offset twice", "PATCH", true, 400, []string{"Upload-Draft-Interop-Version: 8", "Content-Type: application/partial-upload", "Upload-Offset: 0", "Upload-Offset: 0", "Upload-Complete: ?0"}, "x"},
		{"length twice", "POST", false, 400, []string{tus, "Upload-Length: 5", "Upload-Length: 6"}, ""},
		{"patch length twice", "PATCH", true, 400, []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0", "Upload-Length: 10", "Upload-Length: 11"}, "x"},
		{"checksum twice", "PATCH", true, 400, []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0", "Upload-Checksum: sha1 C+7Hteo/D9vJXQ3UfzxbwnXaijM=", "Upload-Checksum: md5 nWVtpoh7GZmUGdUSFC7dyQ=="}, "x"},
		{"concat twice", "POST", false, 400, []string{tus, "Upload-Length: 5", "Upload-Concat: partial", "Upload-Concat: partial"}, ""},
		{"interop version twice", "POST", false, 400, []string{"Upload-Draft-Interop-Version: 6", "Upload-Draft-Interop-Version: 8", "Upload-Complete: ?1"}, "x"},
		{"tus content type", "PATCH", true, 415, []string{tus, "Content-Type: text/plain", "Upload-Offset: 0"}, "x"},
		{"draft content type", "PATCH", true, 415, []string{"Upload-Draft-Interop-Version: 6", "Content-Type: application/offset+octet-stream", "Upload-Offset: 0", "Upload-Complete: ?0"}, "x"},
	}
	e := newEnv(t, false, resumable.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := "/files/"
			if tt.upload {
				url = e.create(t, 10)
			}
			r := e.do(t, tt.method, url, tt.body, tt.headers...).expect(t, tt.status)
			p := r.problem(t)
			if p["status"] != float64(tt.status) || p["detail"] == nil {
				t.Errorf("problem %v: want status %d and a detail", p, tt.status)
			}
			if tt.upload {
				e.do(t, "HEAD", url, nil, tus).expect(t, 200).header(t, "Upload-Offset", "0")
			}
		})
	}
}

func TestUnknownUpload(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		for _, id := range []string{"0123456789abcdef0123456789abcdef", "nope", "%2e%2e", "..%2fetc"} {
			url := "/files/" + id
			e.do(t, "HEAD", url, nil, tus).expect(t, 404)
			e.patch(t, url, 0, []byte("x")).expect(t, 404).problem(t)
			e.do(t, "DELETE", url, nil, tus).expect(t, 404).problem(t)
			e.do(t, "GET", url, nil).expect(t, 404).problem(t)
			e.do(t, "HEAD", url, nil, "Upload-Draft-Interop-Version: 6").expect(t, 404)
		}
		e.do(t, "GET", "/files/a/b", nil).expect(t, 404)
		e.do(t, "PUT", "/files/", nil, tus).expect(t, 405)
	})
}

func TestParallelUploadsWithoutContention(t *testing.T) {
	e := newEnv(t, false, resumable.Config{})
	t.Run("group", func(t *testing.T) {
		for i := range 8 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				data := ferrytest.Bytes(200000, uint64(100+i))
				url := e.create(t, len(data))
				for off := 0; off < len(data); off += 50000 {
					e.patch(t, url, off, data[off:off+50000]).expect(t, 204)
				}
				mustEqual(t, "download", e.download(t, url), data)
			})
		}
	})
}

// rawRequest sends head (a request without its content) on a new
// connection and returns the status of the response, which must come
// before any content is sent.
func rawRequest(t *testing.T, baseURL, head string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", head, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Lengths stay within what a structured-field Integer holds (about a
// petabyte), whatever the dialect, so every length and offset the server
// reports is one a draft client can parse, and no sum of them overflows.
func TestSizeEdges(t *testing.T) {
	e := newEnv(t, false, resumable.Config{Store: memstore.New()})
	for n, status := range map[string]int{"1000000000000000": 413, "999999999999999999": 413, "9223372036854775807": 400} {
		e.do(t, "POST", "/files/", nil, tus, "Upload-Length: "+n).expect(t, status).problem(t)
	}
	url := e.create(t, 999999999999999)
	e.do(t, "HEAD", url, nil, "Upload-Draft-Interop-Version: 8").expect(t, 204).header(t, "Upload-Length", "999999999999999")
	deferred := e.do(t, "POST", "/files/", nil, tus, "Upload-Defer-Length: 1").expect(t, 201).Header.Get("Location")
	e.patch(t, deferred, 0, []byte("x"), "Upload-Length: 1000000000000000").expect(t, 413)

	// A Content-Length that no upload can hold is refused before a byte is read.
	path := strings.TrimPrefix(deferred, e.url)
	for _, cl := range []string{"1000000000000000", "9223372036854775807"} {
		for _, hdr := range []string{
			"Tus-Resumable: 1.0.0\nContent-Type: application/offset+octet-stream\nUpload-Offset: 0",
			"Upload-Draft-Interop-Version: 8\nContent-Type: application/partial-upload\nUpload-Offset: 0\nUpload-Complete: ?1",
		} {
			if got := rawRequest(t, e.url, "PATCH "+path+" HTTP/1.1\nHost: x\nContent-Length: "+cl+"\n"+hdr+"\n"); got != 413 {
				t.Errorf("PATCH with Content-Length %s (%s): %d, want 413", cl, hdr[:12], got)
			}
		}
		if got := rawRequest(t, e.url, "POST /files/ HTTP/1.1\nHost: x\nContent-Length: "+cl+"\nUpload-Complete: ?1\n"); got != 413 {
			t.Errorf("draft POST with Content-Length %s: %d, want 413", cl, got)
		}
	}
	e.do(t, "HEAD", deferred, nil, tus).expect(t, 200).header(t, "Upload-Offset", "0")
}
