package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server"
)

// waitServer bounds every wait on the server in these tests.
const waitServer = 10 * time.Second

// pending is a request whose body the test writes while the server runs it.
type pending struct {
	pw   *io.PipeWriter
	resp chan *http.Response
	err  chan error
}

// start sends method url with a body written through the returned pending.
func (e *env) start(t *testing.T, method, url string, headers ...string) *pending {
	t.Helper()
	if strings.HasPrefix(url, "/") {
		url = e.url + url
	}
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitServer)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, method, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	p := &pending{pw: pw, resp: make(chan *http.Response, 1), err: make(chan error, 1)}
	go func() {
		resp, err := e.client.Do(req)
		if err != nil {
			p.err <- err
			return
		}
		p.resp <- resp
	}()
	return p
}

// response waits for the response's header.
func (p *pending) response(t *testing.T) *http.Response {
	t.Helper()
	select {
	case r := <-p.resp:
		t.Cleanup(func() { r.Body.Close() })
		return r
	case err := <-p.err:
		t.Fatalf("request failed: %v", err)
	case <-time.After(waitServer):
		t.Fatal("no response")
	}
	return nil
}

// ended waits for the request to end, as an error or a whole response.
func (p *pending) ended(t *testing.T) (status int, body []byte) {
	t.Helper()
	select {
	case r := <-p.resp:
		defer r.Body.Close()
		body, _ := io.ReadAll(r.Body)
		return r.StatusCode, body
	case <-p.err:
		return 0, nil
	case <-time.After(waitServer):
		t.Fatal("a request with a stalled body did not end")
	}
	return 0, nil
}

// over reports whether the request has ended, without waiting.
func (p *pending) over() bool {
	select {
	case r := <-p.resp:
		r.Body.Close()
		return true
	case <-p.err:
		return true
	default:
		return false
	}
}

// createUpload creates a tus upload of size bytes and returns its URL.
func (e *env) createUpload(t *testing.T, size int) string {
	t.Helper()
	resp, body := e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: "+strconv.Itoa(size))
	wantStatus(t, resp, body, 201)
	return resp.Header.Get("Location")
}

// finishUpload sends data from off on to the upload at loc and checks
// that the download is data.
func (e *env) finishUpload(t *testing.T, loc string, data []byte, off int) {
	t.Helper()
	resp, body := e.send(t, "PATCH", loc, bytes.NewReader(data[off:]), tusHeader,
		"Content-Type: application/offset+octet-stream", "Upload-Offset: "+strconv.Itoa(off))
	wantStatus(t, resp, body, 204)
	resp, body = e.send(t, "GET", loc, nil)
	wantStatus(t, resp, body, 200)
	mustEqualBytes(t, "the upload", body, data)
}

// A tus PATCH whose content stalls ends at the idle timeout; what arrived
// is kept, and the upload continues from the offset the server tells.
func TestUploadBodyIdle(t *testing.T) {
	run(t, func(t *testing.T, e0 *env) {
		e := newUploadEnv(t, e0.h2c, server.Config{BodyIdleTimeout: 20 * time.Millisecond})
		data := ferrytest.Bytes(300000, 31)
		loc := e.createUpload(t, len(data))
		p := e.start(t, "PATCH", loc, tusHeader, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0")
		p.pw.Write(data[:100000])
		if status, _ := p.ended(t); status >= 200 && status < 300 {
			t.Fatalf("a stalled PATCH ended %d", status)
		}
		p.pw.Close()
		resp, body := e.send(t, "HEAD", loc, nil, tusHeader)
		wantStatus(t, resp, body, 200)
		off, err := strconv.Atoi(resp.Header.Get("Upload-Offset"))
		if err != nil || off > 100000 {
			t.Fatalf("Upload-Offset %q after the stall, want at most what was sent", resp.Header.Get("Upload-Offset"))
		}
		e.finishUpload(t, loc, data, off)
	})
}

// A stalled upload is still taken over by the client's next request at
// once: the idle timeout (an hour here) does not delay the takeover.
func TestUploadTakeoverUnderGuard(t *testing.T) {
	run(t, func(t *testing.T, e0 *env) {
		e := newUploadEnv(t, e0.h2c, server.Config{BodyIdleTimeout: time.Hour, UploadStallTimeout: time.Millisecond})
		data := ferrytest.Bytes(200000, 32)
		loc := e.createUpload(t, len(data))
		p := e.start(t, "PATCH", loc, tusHeader, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0")
		p.pw.Write(data[:50000])
		// A HEAD that comes before the PATCH holds the upload does not
		// take it over; the first one after it does, ending the PATCH.
		// How much of the content the PATCH had read by then depends on
		// scheduling, so only the ending is awaited.
		for deadline := time.Now().Add(waitServer); !p.over(); {
			if time.Now().After(deadline) {
				t.Fatal("no HEAD took the stalled PATCH over")
			}
			resp, body := e.send(t, "HEAD", loc, nil, tusHeader)
			wantStatus(t, resp, body, 200)
		}
		resp, body := e.send(t, "HEAD", loc, nil, tusHeader)
		wantStatus(t, resp, body, 200)
		off, err := strconv.Atoi(resp.Header.Get("Upload-Offset"))
		if err != nil || off > 50000 {
			t.Fatalf("Upload-Offset %q after the takeover, want at most what was sent", resp.Header.Get("Upload-Offset"))
		}
		e.finishUpload(t, loc, data, off)
	})
}

// A live stream has an idle timeout of its own. A plain stream paused past
// it ends with an error reply and is dropped; a resumable one keeps what it
// stored and is finished by a PATCH.
func TestStreamIdle(t *testing.T) {
	run(t, func(t *testing.T, e0 *env) {
		e := newUploadEnv(t, e0.h2c, server.Config{StreamIdleTimeout: 20 * time.Millisecond})
		streams := filepath.Join(e.dir, "streams")
		data := ferrytest.Bytes(100000, 33)

		p := e.start(t, "POST", "/stream/plain.bin")
		r := p.response(t)
		wantStatus(t, r, nil, http.StatusCreated)
		p.pw.Write(data[:1000])
		last := lastReply(t, r.Body)
		if msg, _ := last["error"].(string); last["type"] != "error" || !strings.Contains(msg, "stalled") || strings.Contains(msg, "127.0.0.1") {
			t.Errorf("last reply of a paused plain stream %v, want an error saying it stalled, without the connection's details", last)
		}
		resp, _ := e.send(t, "GET", "/stream/plain.bin", nil)
		wantStatus(t, resp, nil, http.StatusNotFound)
		if parts, _ := filepath.Glob(filepath.Join(streams, ".part", "*")); len(parts) != 0 {
			t.Errorf("a dropped stream left %v", parts)
		}

		p = e.start(t, "POST", "/stream/res.bin", "Upload-Complete: ?0")
		r = p.response(t)
		wantStatus(t, r, nil, http.StatusCreated)
		loc := r.Header.Get("Location")
		p.pw.Write(data[:1000])
		lastReply(t, r.Body)
		resp, _ = e.send(t, "HEAD", loc, nil)
		wantStatus(t, resp, nil, http.StatusNoContent)
		off, err := strconv.Atoi(resp.Header.Get("Upload-Offset"))
		if err != nil || off > 1000 {
			t.Fatalf("Upload-Offset %q after the pause", resp.Header.Get("Upload-Offset"))
		}
		resp, body := e.send(t, "PATCH", loc, bytes.NewReader(data[off:]), "Upload-Offset: "+strconv.Itoa(off), "Upload-Complete: ?1",
			"Content-Type: application/partial-upload")
		wantStatus(t, resp, body, http.StatusOK)
		stored, err := os.ReadFile(filepath.Join(streams, "res.bin"))
		if err != nil {
			t.Fatal(err)
		}
		mustEqualBytes(t, "the resumed stream", stored, data)
	})
}

// lastReply reads NDJSON replies to their end and returns the last.
func lastReply(t *testing.T, r io.Reader) map[string]any {
	t.Helper()
	var last map[string]any
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		last = nil
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("reply %q: %v", sc.Bytes(), err)
		}
	}
	return last
}

// One client address holds at most MaxUploadsPerClient requests with
// content at once; the next gets 429 with Retry-After until one ends.
func TestMaxUploadsPerClient(t *testing.T) {
	run(t, func(t *testing.T, e0 *env) {
		e := newUploadEnv(t, e0.h2c, server.Config{MaxUploadsPerClient: 2, StreamIdleTimeout: time.Hour})
		var open []*pending
		var first *http.Response
		for i := range 2 {
			p := e.start(t, "POST", "/stream/s"+strconv.Itoa(i))
			r := p.response(t)
			wantStatus(t, r, nil, http.StatusCreated)
			open = append(open, p)
			if first == nil {
				first = r
			}
		}
		resp, body := e.send(t, "POST", "/stream/s2", strings.NewReader("x"))
		wantStatus(t, resp, body, http.StatusTooManyRequests)
		if resp.Header.Get("Retry-After") == "" || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("429 without Retry-After or problem details: %v", resp.Header)
		}
		// Not the code of the creation rate (resumable.ErrTooManyUploads):
		// this is about requests in flight.
		if !bytes.Contains(body, []byte(`"code":"too-many-requests"`)) {
			t.Errorf("429 for requests in flight: %s, want code too-many-requests", body)
		}
		if !e.h2c {
			// The answer does not wait for content that is not coming
			// (net/http would read it first, to the idle timeout).
			c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(waitServer))
			io.WriteString(c, "POST /stream/s3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("a stalled request over the bound: %v %v, want 429 at once", resp, err)
			}
		}
		// Requests without content are not counted.
		resp, body = e.send(t, "GET", "/healthz", nil)
		wantStatus(t, resp, body, http.StatusOK)

		open[0].pw.Close()
		io.ReadAll(first.Body) // the stream is done once its replies end
		resp, body = e.send(t, "POST", "/stream/s2", strings.NewReader("x"))
		wantStatus(t, resp, body, http.StatusCreated)
	})
}

// The default bound leaves room for the parallel uploads of real clients:
// ferry put -x 8, tus-js-client with parallelUploads 8, both at once.
func TestDefaultMaxUploadsPerClient(t *testing.T) {
	e := newUploadEnv(t, true, server.Config{})
	for i := range 16 {
		p := e.start(t, "POST", "/stream/p"+strconv.Itoa(i))
		wantStatus(t, p.response(t), nil, http.StatusCreated)
	}
}

// Resumable streams a client left unfinished count against its bound
// until they end: creating them and going away cannot pile them up.
func TestLingeringStreamsPerClient(t *testing.T) {
	e := newUploadEnv(t, false, server.Config{MaxUploadsPerClient: 2})
	for i := range 2 {
		resp, body := e.send(t, "POST", "/stream/r"+strconv.Itoa(i), strings.NewReader("x"), "Upload-Complete: ?0")
		wantStatus(t, resp, body, http.StatusCreated)
	}
	resp, body := e.send(t, "POST", "/stream/r2", strings.NewReader("x"), "Upload-Complete: ?0")
	wantStatus(t, resp, body, http.StatusTooManyRequests)
}

// Streams draw on the storage the uploads do, and are refused as uploads
// are once it is full: 507 for a stream whose length does not fit; a
// plain stream that fills it ends with an error reply and is dropped; a
// resumable one keeps what fit, like a tus append, and its next append
// gets 507 with the offset. What streams hold counts against uploads.
func TestStreamStorageLimit(t *testing.T) {
	const limit = 100 << 10
	run(t, func(t *testing.T, e0 *env) {
		e := newUploadEnv(t, e0.h2c, server.Config{MaxUploadStorage: limit})
		streams := filepath.Join(e.dir, "streams")
		data := ferrytest.Bytes(limit+16<<10, 34)

		resp, body := e.send(t, "POST", "/stream/sized.bin", bytes.NewReader(data))
		wantStatus(t, resp, body, http.StatusInsufficientStorage)

		resp, body = e.send(t, "POST", "/stream/plain.bin", struct{ io.Reader }{bytes.NewReader(data)})
		wantStatus(t, resp, body, http.StatusCreated)
		if last := lastReply(t, bytes.NewReader(body)); last["type"] != "error" || !strings.Contains(fmt.Sprint(last["error"]), "storage") {
			t.Errorf("last reply of a plain stream past the storage %v, want an error naming the storage", last)
		}
		if names, _ := os.ReadDir(streams); len(names) != 1 || names[0].Name() != ".part" {
			t.Errorf("a plain stream past the storage left %v", names)
		}
		if parts, _ := filepath.Glob(filepath.Join(streams, ".part", "*")); len(parts) != 0 {
			t.Errorf("a plain stream past the storage left %v", parts)
		}

		resp, body = e.send(t, "POST", "/stream/res.bin", struct{ io.Reader }{bytes.NewReader(data)}, "Upload-Complete: ?0")
		wantStatus(t, resp, body, http.StatusCreated)
		loc := resp.Header.Get("Location")
		resp, _ = e.send(t, "HEAD", loc, nil)
		wantStatus(t, resp, nil, http.StatusNoContent)
		off, _ := strconv.Atoi(resp.Header.Get("Upload-Offset"))
		if off <= 0 || off > limit {
			t.Fatalf("a resumable stream past the storage kept %d bytes, want what fit of %d", off, limit)
		}
		resp, body = e.send(t, "PATCH", loc, bytes.NewReader(data[off:]), "Upload-Offset: "+strconv.Itoa(off), "Upload-Complete: ?1",
			"Content-Type: application/partial-upload")
		wantStatus(t, resp, body, http.StatusInsufficientStorage)
		if got := resp.Header.Get("Upload-Offset"); got != strconv.Itoa(off) {
			t.Errorf("507 to an append with Upload-Offset %q, want %d", got, off)
		}

		// What the stream holds leaves no room for an upload.
		resp, body = e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: "+strconv.Itoa(limit/2))
		wantStatus(t, resp, body, http.StatusInsufficientStorage)
	})
}

// By default a stream, like an upload, leaves the disk reserve of its
// file system free.
func TestStreamDiskReserve(t *testing.T) {
	const size = 1 << 30 // 5% kept back: about 51 MiB
	cfg := server.WithDiskSpace(server.Config{}, func(string) (int64, int64, bool) { return 52 << 20, size, true })
	e := newUploadEnv(t, false, cfg)
	resp, body := e.send(t, "POST", "/stream/big.bin", bytes.NewReader(make([]byte, 2<<20)))
	wantStatus(t, resp, body, http.StatusInsufficientStorage)
	resp, body = e.send(t, "POST", "/stream/small.bin", bytes.NewReader(make([]byte, 10<<10)))
	wantStatus(t, resp, body, http.StatusCreated)
}

// Creating a stream takes from the client's allowance of creations as
// creating an upload does.
func TestStreamCreationRate(t *testing.T) {
	now := time.Now()
	e := newUploadEnv(t, false, server.WithClock(server.Config{UploadCreationBurst: 2, UploadCreationRate: 1}, func() time.Time { return now }))
	resp, body := e.send(t, "POST", "/files/", nil, tusHeader, "Upload-Length: 1")
	wantStatus(t, resp, body, http.StatusCreated)
	resp, body = e.send(t, "POST", "/stream/a.bin", strings.NewReader("a"))
	wantStatus(t, resp, body, http.StatusCreated)
	resp, body = e.send(t, "POST", "/stream/b.bin", strings.NewReader("b"))
	wantStatus(t, resp, body, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// A client whose content stalls caused the failure, not the server: 408
// for content that stalled past the idle timeout, with a title that says
// so, never a 500. An append cut short is where it stopped: 204 with the
// offset to resume from.
func TestBodyFailureStatus(t *testing.T) {
	run(t, func(t *testing.T, e0 *env) {
		e := newUploadEnv(t, e0.h2c, server.Config{BodyIdleTimeout: 20 * time.Millisecond})
		loc := e.createUpload(t, 1000)
		p := e.start(t, "PATCH", loc, tusHeader, "Content-Type: application/offset+octet-stream", "Upload-Offset: 0")
		p.pw.Write([]byte("some"))
		status, body := p.ended(t)
		if status != 0 && (status != http.StatusRequestTimeout || !strings.Contains(string(body), "stalled")) {
			t.Errorf("a stalled PATCH: %d %s, want 408 saying it stalled", status, body)
		}

		var form bytes.Buffer
		mw := multipart.NewWriter(&form)
		mw.CreateFormFile("file", "f.bin")
		p = e.start(t, "POST", "/upload", "Content-Type: "+mw.FormDataContentType())
		p.pw.Write(form.Bytes())
		if status, body := p.ended(t); status != 0 && status != http.StatusRequestTimeout {
			t.Errorf("a stalled form: %d %s, want 408", status, body)
		}
	})
	// Cut short: the client ends its side of the connection early, and
	// reads the answer.
	e := newUploadEnv(t, false, server.Config{})
	loc := e.createUpload(t, 1000)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitServer))
	fmt.Fprintf(c, "PATCH %s HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 1000\r\n\r\nsome", strings.TrimPrefix(loc, e.url), tusHeader)
	c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != "4" {
		t.Errorf("a PATCH cut short after 4 bytes: %s, Upload-Offset %q %s, want 204 at offset 4 to resume from", resp.Status, resp.Header.Get("Upload-Offset"), body)
	}
}
