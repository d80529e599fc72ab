package resumable_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server/resumable"
)

// outcome is a request made off the test goroutine.
type outcome struct {
	status int
	offset string
	err    error
}

// send makes a request without t, for use in goroutines.
func (e *env) send(ctx context.Context, method, url string, body io.Reader, headers ...string) outcome {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return outcome{err: err}
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return outcome{status: resp.StatusCode, offset: resp.Header.Get("Upload-Offset")}
}

func tusPatch(offset int) []string {
	return []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: " + strconv.Itoa(offset)}
}

// slowBody feeds a PATCH from the test: it blocks in Read until the test
// writes, so the request stays open and active (or stalls) as the test
// decides.
type slowBody struct {
	pr *io.PipeReader
	pw *io.PipeWriter
}

func newSlowBody() *slowBody {
	pr, pw := io.Pipe()
	return &slowBody{pr, pw}
}

// trickle writes data in small pieces every interval, keeping the request
// active, until data runs out or stop is closed. It returns how much it
// wrote.
func (s *slowBody) trickle(data []byte, piece int, every time.Duration, stop <-chan struct{}) int {
	written := 0
	for written < len(data) {
		n := min(piece, len(data)-written)
		if _, err := s.pw.Write(data[written : written+n]); err != nil {
			return written
		}
		written += n
		select {
		case <-stop:
			return written
		case <-time.After(every):
		}
	}
	return written
}

// Two PATCHes to one upload at once: the one in progress keeps the
// upload, the other gets 423 Locked (or 409 once the first is done), and
// exactly one succeeds. A HEAD meanwhile is refused as well: it would
// report an offset that is still moving.
func TestConcurrentPatches(t *testing.T) {
	cfg := resumable.Config{StallTimeout: 10 * time.Second, LockTimeout: 300 * time.Millisecond}
	run(t, cfg, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(1<<20, 9)
		url := e.create(t, len(data))

		body := newSlowBody()
		first := make(chan outcome, 1)
		go func() {
			first <- e.send(context.Background(), "PATCH", url, body.pr, append(tusPatch(0), "Content-Length: "+strconv.Itoa(len(data)))...)
		}()
		stop := make(chan struct{})
		trickled := make(chan int, 1)
		go func() { trickled <- body.trickle(data, 16<<10, 20*time.Millisecond, stop) }()
		time.Sleep(100 * time.Millisecond) // the first PATCH holds the upload

		second := e.send(t.Context(), "PATCH", url, bytes.NewReader(data), tusPatch(0)...)
		head := e.send(t.Context(), "HEAD", url, nil, tus)
		close(stop)
		sent := <-trickled
		// Send the rest at once; the first PATCH finishes the upload.
		go func() {
			body.pw.Write(data[sent:])
			body.pw.Close()
		}()
		r1 := <-first

		if second.err != nil || (second.status != 423 && second.status != 409) {
			t.Errorf("second PATCH: %d %v; want 423 Locked (or 409)", second.status, second.err)
		}
		if head.status != 423 {
			t.Errorf("HEAD during an active PATCH: %d %v; want 423", head.status, head.err)
		}
		if r1.err != nil || r1.status != 204 || r1.offset != strconv.Itoa(len(data)) {
			t.Fatalf("first PATCH: %+v; want 204 at %d", r1, len(data))
		}
		mustEqual(t, "download", e.download(t, url), data)
	})
}

// A pure race of two complete PATCHes: whichever the server takes first
// wins, the other gets 423 or 409, never both 2xx and never corruption.
func TestRacingPatches(t *testing.T) {
	e := newEnv(t, false, resumable.Config{LockTimeout: 200 * time.Millisecond})
	for i := range 10 {
		data := ferrytest.Bytes(256<<10, uint64(20+i))
		url := e.create(t, len(data))
		res := make(chan outcome, 2)
		for range 2 {
			go func() { res <- e.send(t.Context(), "PATCH", url, bytes.NewReader(data), tusPatch(0)...) }()
		}
		a, b := <-res, <-res
		wins := 0
		for _, o := range []outcome{a, b} {
			switch {
			case o.err != nil:
				t.Fatalf("race %d: %v", i, o.err)
			case o.status == 204:
				wins++
			case o.status != 409 && o.status != 423:
				t.Errorf("race %d: status %d", i, o.status)
			}
		}
		if wins != 1 {
			t.Fatalf("race %d: %d PATCHes succeeded (%d, %d), want exactly 1", i, wins, a.status, b.status)
		}
		mustEqual(t, "download", e.download(t, url), data)
	}
}

// A PATCH whose content stalls — the client lost its connection but the
// server has not noticed — is taken over by the client's next request:
// the bytes it received are kept, and the upload resumes from there at
// once instead of after a long timeout.
func TestStalledPatchTakenOver(t *testing.T) {
	cfg := resumable.Config{StallTimeout: 200 * time.Millisecond, LockTimeout: 5 * time.Second}
	run(t, cfg, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(1<<20, 10)
		for _, next := range []string{"HEAD", "PATCH"} {
			t.Run(next, func(t *testing.T) {
				url := e.create(t, len(data))
				body := newSlowBody()
				stale := make(chan outcome, 1)
				go func() {
					stale <- e.send(context.Background(), "PATCH", url, body.pr, append(tusPatch(0), "Content-Length: "+strconv.Itoa(len(data)))...)
				}()
				const sent = 300000
				body.pw.Write(data[:sent])
				time.Sleep(500 * time.Millisecond) // received, then silence: a stall

				start := time.Now()
				var r *response
				if next == "HEAD" {
					r = e.do(t, "HEAD", url, nil, tus).expect(t, 200)
				} else {
					// The client believes nothing arrived: it learns the
					// durable offset from the 409.
					r = e.patch(t, url, 0, data).expect(t, 409)
				}
				if d := time.Since(start); d > 3*time.Second {
					t.Errorf("takeover took %v", d)
				}
				r.header(t, "Upload-Offset", strconv.Itoa(sent))

				select {
				case o := <-stale:
					if o.err == nil && o.status < 400 {
						t.Errorf("stalled PATCH ended %d, want an error", o.status)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("stalled PATCH did not end after the takeover")
				}
				body.pw.Close()

				e.patch(t, url, sent, data[sent:]).expect(t, 204).header(t, "Upload-Offset", strconv.Itoa(len(data)))
				mustEqual(t, "download", e.download(t, url), data)
			})
		}
	})
}

// DELETE does not wait for an active PATCH: cancellation wins.
func TestDeleteTakesOver(t *testing.T) {
	cfg := resumable.Config{StallTimeout: 10 * time.Second, LockTimeout: 5 * time.Second}
	run(t, cfg, func(t *testing.T, e *env) {
		data := ferrytest.Bytes(1<<20, 11)
		url := e.create(t, len(data))
		body := newSlowBody()
		active := make(chan outcome, 1)
		go func() {
			active <- e.send(context.Background(), "PATCH", url, body.pr, append(tusPatch(0), "Content-Length: "+strconv.Itoa(len(data)))...)
		}()
		stop := make(chan struct{})
		go body.trickle(data, 8<<10, 10*time.Millisecond, stop)
		time.Sleep(100 * time.Millisecond)

		start := time.Now()
		e.do(t, "DELETE", url, nil, tus).expect(t, 204)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("DELETE waited %v for the active PATCH", d)
		}
		close(stop)
		body.pw.Close()
		if o := <-active; o.err == nil && o.status < 400 {
			t.Errorf("PATCH of a deleted upload ended %d", o.status)
		}
		e.do(t, "HEAD", url, nil, tus).expect(t, 404)
		e.do(t, "HEAD", url, nil, fmt.Sprintf("Upload-Draft-Interop-Version: %d", resumable.LatestInterop)).expect(t, 404)
	})
}
