package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// While a host cannot be reached, the plain progress line says what it
// waits for, once per attempt, instead of "0 B  0 B/s" every two seconds;
// the count comes back once bytes move.
func TestProgressWaitsForUnreachableHost(t *testing.T) {
	var out strings.Builder
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	pp := newProgressPrinter(&out, false, "f.bin")
	pp.now, pp.lastPlain = clock.now, clock.now()
	refused := errors.New("dial tcp 127.0.0.1:9: connect: connection refused")
	for attempt := 1; attempt <= 3; attempt++ {
		pp.retry(ferry.RetryEvent{Attempt: attempt, Delay: 4 * time.Second, Err: refused, Host: "127.0.0.1:9", Unreachable: true})
		for range 8 {
			clock.advance(time.Second)
			pp.update(ferry.Progress{Expected: -1})
		}
	}
	want := "f.bin: waiting for 127.0.0.1:9 (attempt 1, next in 4s)\n" +
		"f.bin: waiting for 127.0.0.1:9 (attempt 2, next in 4s)\n" +
		"f.bin: waiting for 127.0.0.1:9 (attempt 3, next in 4s)\n"
	if out.String() != want {
		t.Fatalf("while waiting:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	clock.advance(time.Second)
	pp.update(ferry.Progress{Done: 2048, Expected: 4096, Speed: 1024})
	if got := out.String(); !strings.HasPrefix(got, "f.bin: 2.0 KiB / 4.0 KiB") {
		t.Fatalf("once bytes move: %q, want the count", got)
	}
}

// Another failure is one line saying why, and the count is not repeated
// until bytes move.
func TestProgressRetryNote(t *testing.T) {
	var out strings.Builder
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	pp := newProgressPrinter(&out, false, "f.bin")
	pp.now, pp.lastPlain = clock.now, clock.now()
	pp.retry(ferry.RetryEvent{Attempt: 1, Delay: 1500 * time.Millisecond, Err: errors.New("unexpected status 503")})
	for range 5 {
		clock.advance(time.Second)
		pp.update(ferry.Progress{Expected: -1})
	}
	if want := "ferry: attempt 1 failed (unexpected status 503); retrying in 1.5s\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

// On a terminal the waiting line is redrawn in place with its countdown.
func TestProgressWaitingCountsDownOnATerminal(t *testing.T) {
	var out strings.Builder
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	pp := newProgressPrinter(&out, false, "f.bin")
	pp.tty, pp.now = true, clock.now
	pp.retry(ferry.RetryEvent{Attempt: 2, Delay: 3 * time.Second, Host: "h:1", Unreachable: true})
	clock.advance(time.Second)
	pp.update(ferry.Progress{Expected: -1})
	want := "\rf.bin: waiting for h:1 (attempt 2, next in 3s)\x1b[K\rf.bin: waiting for h:1 (attempt 2, next in 2s)\x1b[K"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

// What a server says reaches the terminal without its control sequences:
// a reason phrase, an error text, a problem title.
func TestServerTextCannotDriveTheTerminal(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("HTTP/1.1 404 \x1b]0;owned\x07\x1b[2J\u202egnp.exe\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			c.Close()
		}
	}()
	var stderr strings.Builder
	code := run(context.Background(), []string{"get", "http://" + l.Addr().String() + "/f", "-o", filepath.Join(t.TempDir(), "f")}, nil, io.Discard, &stderr)
	if code != exitFailed {
		t.Fatalf("exit %d", code)
	}
	if s := stderr.String(); strings.ContainsAny(s, "\x1b\x07\u202e") || !strings.Contains(s, `404 \x1b]0;owned\x07\x1b[2J\u202egnp.exe`) {
		t.Errorf("stderr %q: want the server's text with its control characters escaped", s)
	}
}
