package ferry_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
)

// A server that reads every request of a resumable stream and keeps none
// of it does not hold the stream in a loop: bytes sent are no progress
// until the server acknowledges them.
func TestStreamServerThatKeepsNothingIsNotRetriedForever(t *testing.T) {
	var requests atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		io.CopyN(io.Discard, r.Body, 1000)
		panic(http.ErrAbortHandler) // the connection drops, nothing kept
	}))
	ts.Config.ErrorLog = quietLog()
	defer ts.Close()
	const attempts = 3
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := mustSession(t, failingConfig(attempts)).Stream(ctx, ferry.StreamRequest{URL: ts.URL + "/s", Resumable: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Write(ferrytest.Bytes(64<<10, 202))
	st.Close()
	if _, err := st.Wait(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("err = %v, want the stream to fail before the test's deadline", err)
	}
	if n := requests.Load(); n != attempts {
		t.Errorf("%d requests, want %d", n, attempts)
	}
}

// quietLog drops a test server's log of the connections it cuts.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// A server that says a resumable stream is complete while its producer
// still writes does not end it as a success with what was sent so far.
func TestStreamServerClaimingCompletionEarlyFails(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			w.Header().Set("Location", "/s?upload=1")
			w.WriteHeader(104)
			io.CopyN(io.Discard, r.Body, 100)
			panic(http.ErrAbortHandler)
		case http.MethodHead:
			w.Header().Set("Upload-Offset", "0")
			w.Header().Set("Upload-Complete", "?1")
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "no", http.StatusMethodNotAllowed)
		}
	}))
	ts.Config.ErrorLog = quietLog()
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := mustSession(t, failingConfig(3)).Stream(ctx, ferry.StreamRequest{URL: ts.URL + "/s", Resumable: true})
	if err != nil {
		t.Fatal(err)
	}
	// The producer goes on writing, and never closes the stream.
	go func() {
		for {
			if _, err := st.Write(ferrytest.Bytes(4096, 203)); err != nil {
				return
			}
			select {
			case <-st.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	res, err := st.Wait(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("result %+v, %v: want the stream to fail while its producer still writes", res, err)
	}
}

// A key URL that answers with megabytes is refused after the first
// bytes past a key's size, not read whole into memory.
func TestHLSHugeKeyIsNotReadWhole(t *testing.T) {
	o := newHLSOrigin(t, false)
	o.put("/k/key", bytes.Repeat([]byte("k"), 16<<20))
	o.vod("/k", 2, func(i int) string {
		if i == 0 {
			return "#EXT-X-KEY:METHOD=AES-128,URI=\"key\"\n"
		}
		return ""
	})
	cfg := testConfig(false)
	cfg.Retry.MaxAttempts = 2
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	task, err := mustSession(t, cfg).HLS(ctx, ferry.HLSRequest{URL: o.url + "/k/index.m3u8", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var keyBytes int64
	for ev := range task.Events() {
		if m, ok := ev.(ferry.MetricsEvent); ok && strings.HasSuffix(m.Transaction.URL, "/k/key") {
			keyBytes += m.Transaction.ResponseBodyBytes
		}
	}
	_, err = task.Wait(ctx)
	if _, ok := errors.AsType[*ferry.HLSKeyError](err); !ok {
		t.Fatalf("err = %v, want a key error", err)
	}
	if keyBytes > 1<<20 {
		t.Errorf("%d bytes of the key read, want at most a few KiB", keyBytes)
	}
}

// attack is a hostile server's behaviour and what the client must do
// about it, in every engine.
type attack struct {
	name    string
	handler func(hits *atomic.Int32) http.Handler
	// check judges the engine's error and the requests the server saw.
	check func(t *testing.T, err error, requests int32)
}

// TestHostileServers runs every engine against servers that lie, loop or
// flood: each must end with a clear error in a bounded number of
// requests, never crash, hang or report a success.
func TestHostileServers(t *testing.T) {
	const attempts = 3
	attacks := []attack{
		{
			name: "endless redirects",
			handler: func(hits *atomic.Int32) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					n := hits.Add(1)
					http.Redirect(w, r, fmt.Sprintf("/r%d", n), http.StatusFound)
				})
			},
			check: func(t *testing.T, err error, requests int32) {
				if !errors.Is(err, ferry.ErrTooManyRedirects) {
					t.Errorf("err = %v, want too many redirects", err)
				}
				// One chain of 11 requests (a multipart POST and a stream
				// follow none: a 302 to a POST is a GET then, refused).
				if requests > 11 {
					t.Errorf("%d requests, want one chain", requests)
				}
			},
		},
		retryAfter("Retry-After of years", http.StatusServiceUnavailable, "999999999"),
		retryAfter("Retry-After far in the future", http.StatusTooManyRequests, "Fri, 31 Dec 9999 23:59:59 GMT"),
		{
			name: "a Content-Length the body never reaches",
			handler: func(hits *atomic.Int32) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					io.Copy(io.Discard, r.Body)
					w.Header().Set("Content-Length", "100000")
					w.Header().Set("Accept-Ranges", "bytes")
					w.Header().Set("ETag", `"v1"`)
					w.Header().Set("Tus-Resumable", "1.0.0")
					w.Header().Set("Tus-Version", "1.0.0")
					w.Header().Set("Location", "/u/1")
					w.WriteHeader(http.StatusOK)
					if r.Method != http.MethodHead {
						w.Write([]byte("#EXTM3U\n"))
					}
				})
			},
			check: func(t *testing.T, err error, requests int32) {
				if err == nil {
					t.Error("a body that lied about its length was taken")
				}
				if requests > 3*attempts {
					t.Errorf("%d requests", requests)
				}
			},
		},
		{
			name: "huge response header",
			handler: func(hits *atomic.Int32) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					for i := range 1200 {
						w.Header().Set(fmt.Sprintf("X-Junk-%d", i), strings.Repeat("j", 10<<10))
					}
					w.WriteHeader(http.StatusOK)
				})
			},
			check: func(t *testing.T, err error, requests int32) {
				if err == nil {
					t.Error("a 12 MiB header was taken")
				}
				if requests > 2*attempts {
					t.Errorf("%d requests", requests)
				}
			},
		},
	}
	for _, a := range attacks {
		for _, e := range engines {
			t.Run(a.name+"/"+e.name, func(t *testing.T) {
				var hits atomic.Int32
				ts := httptest.NewServer(a.handler(&hits))
				ts.Config.ErrorLog = quietLog()
				defer ts.Close()
				_, err := e.run(t, mustSession(t, failingConfig(attempts)), ts.URL+"/f")
				a.check(t, err, hits.Load())
			})
		}
	}
}

// A server that answers a stream with interim responses without end does
// not hold it: the responses are counted, and the stream fails after its
// attempts.
func TestStreamInterimFloodEnds(t *testing.T) {
	var requests, interim atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		for i := 0; ; i++ {
			fmt.Fprintf(bw, "HTTP/1.1 104 Upload Resumption Supported\r\nLocation: /s?upload=1\r\nUpload-Offset: %d\r\n\r\n", i)
			if bw.Flush() != nil {
				return
			}
			interim.Add(1)
		}
	}))
	ts.Config.ErrorLog = quietLog()
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := mustSession(t, failingConfig(3)).Stream(ctx, ferry.StreamRequest{URL: ts.URL + "/s", Resumable: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("a producer that pauses"))
	if _, err := st.Wait(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("err = %v, want the stream to fail before the test's deadline", err)
	}
	t.Logf("%d requests, %d interim responses", requests.Load(), interim.Load())
}

// forgetfulTus is a tus server (with concatenation) that creates every
// upload at /u/1, says it holds none of it whenever asked, and answers
// the appends with patch.
func forgetfulTus(t *testing.T, patch http.HandlerFunc) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Tus-Resumable", "1.0.0")
		switch r.Method {
		case http.MethodOptions:
			w.Header().Set("Tus-Version", "1.0.0")
			w.Header().Set("Tus-Extension", "creation,concatenation")
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPost:
			w.Header().Set("Location", "/u/1")
			w.WriteHeader(http.StatusCreated)
		case http.MethodHead:
			w.Header().Set("Upload-Offset", "0")
			w.WriteHeader(http.StatusOK)
		case http.MethodPatch:
			patch(w, r)
		}
	}))
	ts.Config.ErrorLog = quietLog()
	t.Cleanup(ts.Close)
	return ts
}

// A tus server whose offset goes back after every cut append (it
// acknowledges the first append, cuts the next, then says it holds
// nothing) does not hold the upload in a loop: only bytes past the most
// the server ever acknowledged are progress.
func TestUploadOffsetGoingBackIsNotProgress(t *testing.T) {
	var patches atomic.Int32
	ts := forgetfulTus(t, func(w http.ResponseWriter, r *http.Request) {
		patches.Add(1)
		off, _ := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
		if off > 0 {
			panic(http.ErrAbortHandler) // only a first append gets through
		}
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Upload-Offset", strconv.FormatInt(off+n, 10))
		w.WriteHeader(http.StatusNoContent)
	})
	path, _ := makeFile(t, 400000)
	_, _, err := runUpload(t, mustSession(t, failingConfig(3)), ferry.UploadRequest{
		URL: ts.URL + "/files/", Path: path, Protocol: ferry.ProtocolTus, ChunkSize: ferry.MinChunkSize})
	if err == nil {
		t.Fatal("the upload succeeded against a server that keeps nothing")
	}
	if n := patches.Load(); n > 20 {
		t.Errorf("%d appends sent to a server that keeps going back", n)
	}
}

// A resumable-upload server that reads every append and acknowledges none
// of it (the same Upload-Offset every time) does not hold the upload in a
// loop, on one connection or several: an append acknowledged with no
// progress is a failure, and the retry budget bounds them.
func TestUploadNothingAcknowledgedEnds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		protocol ferry.Protocol
		conns    int
		size     int64
	}{
		{"tus", ferry.ProtocolTus, 1, 3 * ferry.MinChunkSize},
		{"tus parallel", ferry.ProtocolTus, 2, 8 << 20}, // large enough to be split
		{"ietf", ferry.ProtocolIETF, 1, 3 * ferry.MinChunkSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var patches atomic.Int32
			ts := forgetfulTus(t, func(w http.ResponseWriter, r *http.Request) {
				if patches.Add(1) > 100 {
					// Ends the test on a client that never gives up.
					w.WriteHeader(http.StatusForbidden)
					return
				}
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Upload-Offset", r.Header.Get("Upload-Offset"))
				w.WriteHeader(http.StatusNoContent)
			})
			const attempts = 3
			path, _ := makeFile(t, tc.size)
			_, _, err := runUpload(t, mustSession(t, failingConfig(attempts)), ferry.UploadRequest{
				URL: ts.URL + "/files/", Path: path, Protocol: tc.protocol,
				ChunkSize: ferry.MinChunkSize, Connections: tc.conns})
			if err == nil || !strings.Contains(err.Error(), "acknowledged none") {
				t.Errorf("err = %v, want the appends that were not acknowledged", err)
			}
			if n, most := patches.Load(), int32(attempts*tc.conns); n > most {
				t.Errorf("%d appends sent to a server that keeps nothing, want at most %d", n, most)
			}
		})
	}
}

// retryAfter is a server that answers every request with status and a
// Retry-After that asks for too long: the client fails at once.
func retryAfter(name string, status int, value string) attack {
	return attack{
		name: name,
		handler: func(hits *atomic.Int32) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Retry-After", value)
				w.WriteHeader(status)
			})
		},
		check: func(t *testing.T, err error, requests int32) {
			if err == nil || !strings.Contains(err.Error(), "retry after") || requests != 1 {
				t.Errorf("err = %v after %d requests, want the server's wait refused at once", err, requests)
			}
		},
	}
}
