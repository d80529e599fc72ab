package ferrytest_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/ferryhq/ferry/ferrytest"
)

// modes are the protocols the protocol-sensitive tests run under.
var modes = []struct {
	name  string
	opts  []ferrytest.Option
	proto string
}{
	{"HTTP1", nil, "HTTP/1.1"},
	{"H2C", []ferrytest.Option{ferrytest.HTTP2()}, "HTTP/2.0"},
	{"TLS", []ferrytest.Option{ferrytest.TLS()}, "HTTP/2.0"},
}

// run runs f once per protocol, with newServer starting servers in that
// protocol.
func run(t *testing.T, f func(t *testing.T, newServer func(...ferrytest.Option) *ferrytest.Server)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			f(t, func(opts ...ferrytest.Option) *ferrytest.Server {
				t.Helper()
				srv := ferrytest.NewServer(t, append(append([]ferrytest.Option(nil), m.opts...), opts...)...)
				return srv
			})
		})
	}
}

// do sends a request with the headers given as name, value pairs and reads
// the whole body. err is the error of the body read; a failed request
// fails the test.
func do(t *testing.T, c *http.Client, method, url string, hdr ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// get is do for a GET whose body must read without error.
func get(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := do(t, c, http.MethodGet, url, hdr...)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, body
}

// bytesOf returns bytes [off, off+n) of version v of the resource.
func bytesOf(t *testing.T, srv *ferrytest.Server, v int, off, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if m, err := srv.Content(v).ReadAt(b, off); int64(m) != n {
		t.Fatalf("Content(%d).ReadAt(%d bytes at %d) = %d, %v", v, n, off, m, err)
	}
	return b
}

func checkBody(t *testing.T, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("body = %d bytes, want %d bytes (equal: false)", len(got), len(want))
	}
}
