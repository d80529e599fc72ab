package tcpinfo_test

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/ferryhq/ferry/internal/tcpinfo"
)

// Counters of a real loopback connection, read through TLS as well.
func TestGet(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_INFO is read on Linux only") // elsewhere Get reports !ok, checked below
	}
	body := make([]byte, 4<<20)
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer ts.Close()

	raw, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	defer c.Close()
	before, ok := tcpinfo.Get(c)
	if !ok {
		t.Fatal("no counters for a TLS connection over TCP")
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, c)
	after, ok := tcpinfo.Get(c)
	if !ok {
		t.Fatal("no counters after the response")
	}
	if n < int64(len(body)) {
		t.Fatalf("read %d bytes", n)
	}
	if segs := segs(before, after); segs < 2 {
		t.Errorf("%d segments in for %d bytes", segs, n)
	}
	if after.MinRTT <= 0 {
		t.Errorf("least round trip %v", after.MinRTT)
	}
	// Loopback may reorder under load, so only what the kernel guarantees
	// is checked: the out-of-order count is a part of the segments in.
	if ooo := after.OutOfOrder - before.OutOfOrder; ooo > segs(before, after) {
		t.Errorf("%d packets out of order of %d segments in", ooo, segs(before, after))
	}
}

// segs is how many segments came in between two snapshots (the counters
// wrap at 2^32).
func segs(before, after tcpinfo.Info) uint32 { return after.SegsIn - before.SegsIn }

func TestGetNotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := tcpinfo.Get(a); ok {
		t.Error("counters for a pipe")
	}
	if _, ok := tcpinfo.Get(nil); ok {
		t.Error("counters for nil")
	}
}
