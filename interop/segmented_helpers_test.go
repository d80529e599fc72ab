//go:build interop

package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/download"
	"github.com/ferryhq/ferry/internal/segment"
)

// Helpers for the segmented-download tests: reading ferry's control file,
// comparing a .part file with its source, reading nginx's and ferry serve's
// request logs, and running ferry in the background to kill it.

// --- the control file ---------------------------------------------------

// readControl reads the control file of a download to out; ok is false
// when there is none.
func readControl(t testing.TB, out string) (c download.State, ok bool) {
	t.Helper()
	b, err := os.ReadFile(download.ControlPath(out))
	if errors.Is(err, fs.ErrNotExist) {
		return c, false
	}
	if err != nil {
		t.Fatalf("read control file: %v", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("control file %s.ferry is not JSON: %v\n%s", out, err, b)
	}
	return c, true
}

// checkpointed is how many bytes the control file says are in place: all
// but the missing ranges of a segmented layout, else the offset.
func checkpointed(c download.State) int64 {
	if c.Missing == nil {
		return c.Offset
	}
	done := c.Size
	for _, r := range c.Missing {
		done -= r.Len()
	}
	return done
}

// missingOrAll returns the ranges a run starting from c still has to fetch
// (the whole file when there is no segmented layout yet).
func missingOrAll(c download.State, ok bool, size int64) []segment.Range {
	if !ok || c.Missing == nil {
		return []segment.Range{{Start: 0, End: size}}
	}
	return slices.Clone(c.Missing)
}

// insideAny reports whether r lies within one of the ranges.
func insideAny(r segment.Range, ranges []segment.Range) bool {
	for _, m := range ranges {
		if r.Start >= m.Start && r.End <= m.End {
			return true
		}
	}
	return false
}

// --- comparing a .part file with its source -------------------------------

// partCheck is what comparePart learned about a .part file.
type partCheck struct {
	// written counts the bytes of 4 KiB blocks that equal the source: the
	// bytes really on disk, to within a block per write frontier (an
	// unwritten block of a preallocated file reads as zeros, which random
	// source data never is).
	written int64
	// badDone is the first byte that the control file claims is in place
	// but differs from the source, or -1.
	badDone int64
}

// comparePart streams part and src side by side. Every byte outside
// missing must equal the source; it also counts the blocks that do.
func comparePart(t testing.TB, part, src string, missing []segment.Range) partCheck {
	t.Helper()
	const block = 4 * KiB
	pf, err := os.Open(part)
	if err != nil {
		t.Fatalf("compare: %v", err)
	}
	defer pf.Close()
	sf, err := os.Open(src)
	if err != nil {
		t.Fatalf("compare: %v", err)
	}
	defer sf.Close()
	pb, sb := make([]byte, MiB), make([]byte, MiB)
	res := partCheck{badDone: -1}
	var off int64
	mi := 0 // first missing range that does not end before off
	for {
		n, err := io.ReadFull(sf, sb)
		if n == 0 {
			if err == io.EOF {
				break
			}
			t.Fatalf("compare: read %s: %v", src, err)
		}
		if _, perr := io.ReadFull(pf, pb[:n]); perr != nil {
			t.Fatalf("compare: %s is shorter than its source (at %d): %v", part, off, perr)
		}
		for b := 0; b < n; b += block {
			e := min(b+block, n)
			if bytes.Equal(pb[b:e], sb[b:e]) {
				res.written += int64(e - b)
			}
		}
		// The bytes of [off, off+n) outside the missing ranges must match.
		if res.badDone < 0 {
			pos, end := off, off+int64(n)
			for pos < end {
				for mi < len(missing) && missing[mi].End <= pos {
					mi++
				}
				doneEnd := end
				if mi < len(missing) {
					if missing[mi].Start <= pos {
						pos = missing[mi].End
						continue
					}
					doneEnd = min(end, missing[mi].Start)
				}
				a, z := pos-off, doneEnd-off
				if !bytes.Equal(pb[a:z], sb[a:z]) {
					for i := a; i < z; i++ {
						if pb[i] != sb[i] {
							res.badDone = off + i
							break
						}
					}
					break
				}
				pos = doneEnd
			}
		}
		off += int64(n)
		if err != nil { // a short last read
			break
		}
	}
	return res
}

// --- nginx's access log ----------------------------------------------------

// accessEntry is one line of the access log internal/peer makes nginx
// write: client, request, status, $body_bytes_sent, Range, If-Range, time.
type accessEntry struct {
	method, path string
	status       int
	bytes        int64 // $body_bytes_sent
	rng          segment.Range
	ranged       bool
}

var accessLineRE = regexp.MustCompile(`^\S+ "(\S+) (\S+)[^"]*" (\d{3}) (\d+) range="([^"]*)"`)

func parseAccessLog(t testing.TB, lines []string) []accessEntry {
	t.Helper()
	var out []accessEntry
	for _, l := range lines {
		m := accessLineRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("access log line not understood: %q", l)
		}
		e := accessEntry{method: m[1], path: m[2]}
		e.status, _ = strconv.Atoi(m[3])
		e.bytes, _ = strconv.ParseInt(m[4], 10, 64)
		if r, ok := parseByteRange(m[5]); ok {
			e.rng, e.ranged = r, true
		}
		out = append(out, e)
	}
	return out
}

// parseByteRange reads a closed "bytes=a-b" Range header into [a, b+1).
func parseByteRange(h string) (segment.Range, bool) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return segment.Range{}, false
	}
	a, b, ok := strings.Cut(spec, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || last < first {
		return segment.Range{}, false
	}
	return segment.Range{Start: first, End: last + 1}, true
}

// waitServerIdle waits until no TCP connection to the server at baseURL is
// open on the server's side (ESTABLISHED or CLOSE_WAIT in /proc/net/tcp):
// nginx writes a request's access log line before it closes the
// connection, so after a client is killed this is when the log is complete.
func waitServerIdle(t testing.TB, baseURL string, timeout time.Duration) {
	t.Helper()
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil {
		t.Fatalf("no port in %s", baseURL)
	}
	deadline := time.Now().Add(timeout)
	for {
		open := openServerConns(t, uint16(port))
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections to port %d still open %v after the client ended", open, port, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openServerConns counts sockets with local port port that are
// ESTABLISHED (01) or CLOSE_WAIT (08), i.e. not yet closed by the server.
func openServerConns(t testing.TB, port uint16) int {
	t.Helper()
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if f == "/proc/net/tcp" {
				t.Fatalf("read %s: %v", f, err)
			}
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseUint(hexPort, 16, 16)
			if err != nil || uint16(p) != port {
				continue
			}
			if st := fields[3]; st == "01" || st == "08" {
				n++
			}
		}
	}
	return n
}

// --- ferry serve's request log ---------------------------------------------

// serveRequest is one "msg=request" line that `ferry serve` logs with slog.
type serveRequest struct {
	method, path, proto, remote string
	status                      int
	bytes                       int64
	rng                         segment.Range
	ranged                      bool
}

var slogAttrRE = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

func parseServeLog(logs string) []serveRequest {
	var out []serveRequest
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "msg=request") {
			continue
		}
		attrs := map[string]string{}
		for _, m := range slogAttrRE.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if uq, err := strconv.Unquote(v); err == nil {
				v = uq
			}
			attrs[m[1]] = v
		}
		r := serveRequest{method: attrs["method"], path: attrs["path"], proto: attrs["proto"], remote: attrs["remote"]}
		r.status, _ = strconv.Atoi(attrs["status"])
		r.bytes, _ = strconv.ParseInt(attrs["bytes"], 10, 64)
		r.rng, r.ranged = parseByteRange(attrs["range"])
		out = append(out, r)
	}
	return out
}

// --- ferry in the background ------------------------------------------------

// bgFerry is a ferry process the test means to kill.
type bgFerry struct {
	args           []string
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	start          time.Time
}

func startBgFerry(t testing.TB, args ...string) *bgFerry {
	t.Helper()
	p := &bgFerry{args: args, done: make(chan struct{})}
	p.cmd = exec.Command(ferryBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start ferry: %v", err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { // never leave one running
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// killAfter sends SIGKILL once d has passed since the start and waits for
// the process to end. It fails the test when ferry ended on its own first.
func (p *bgFerry) killAfter(t testing.TB, d time.Duration) {
	t.Helper()
	p.signalAfter(t, d, syscall.SIGKILL)
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("ferry was not ended by the SIGKILL (%v)\nstdout:\n%s\nstderr:\n%s", p.cmd.ProcessState,
			tail(p.stdout.String(), 2000), tail(p.stderr.String(), 2000))
	}
}

// signalAfter sends sig once d has passed since the start and waits (up
// to 10s) for the process to end; it returns the exit code (-1 for death
// by a signal). It fails the test when ferry ended on its own first.
func (p *bgFerry) signalAfter(t testing.TB, d time.Duration, sig syscall.Signal) int {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("ferry %s ended (exit %d) after %v, before the %v planned at %v\nstdout:\n%s\nstderr:\n%s",
			strings.Join(p.args, " "), p.cmd.ProcessState.ExitCode(), time.Since(p.start).Round(time.Millisecond),
			sig, d, tail(p.stdout.String(), 2000), tail(p.stderr.String(), 2000))
	case <-time.After(time.Until(p.start.Add(d))):
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to ferry: %v", sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ferry still running 10s after %v\nstderr:\n%s", sig, tail(p.stderr.String(), 2000))
	}
	return p.cmd.ProcessState.ExitCode()
}

// --- disk space --------------------------------------------------------------

// freeBytes is the space available to unprivileged users on dir's filesystem.
func freeBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/MiB) }
