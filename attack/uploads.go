package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

var b64enc = base64.StdEncoding

// uploadLimit is the --max-upload-size of the upload classes.
const uploadLimit = 1 << 20

var tusHeader = http.Header{"Tus-Resumable": {"1.0.0"}}

// createPartial creates a tus partial upload and returns its path.
func createPartial(s *server, length string) (string, error) {
	h := tusHeader.Clone()
	h.Set("Upload-Concat", "partial")
	if length == "" {
		h.Set("Upload-Defer-Length", "1")
	} else {
		h.Set("Upload-Length", length)
	}
	return s.create(h, nil)
}

// create makes an upload with a tus POST of h and body, and returns the
// path of its URL.
func (s *server) create(h http.Header, body io.Reader) (string, error) {
	code, hd, _, err := s.do("POST", "/files/", h, body, true)
	if err != nil || code != http.StatusCreated {
		return "", errorf("creating an upload: %d %v", code, err)
	}
	u, err := url.Parse(hd.Get("Location"))
	if err != nil {
		return "", err
	}
	return u.Path, nil
}

// patch appends body at offset, declaring length when it is not "".
func patch(s *server, path string, offset int, body []byte, length string) (int, error) {
	h := tusHeader.Clone()
	h.Set("Content-Type", "application/offset+octet-stream")
	h.Set("Upload-Offset", strconv.Itoa(offset))
	if length != "" {
		h.Set("Upload-Length", length)
	}
	code, _, _, err := s.do("PATCH", path, h, bytes.NewReader(body), true)
	return code, err
}

func attackConcat(ctx context.Context, e *env, r *result) error {
	l, s, err := serveLayout(ctx, e, "--max-upload-size", strconv.Itoa(uploadLimit))
	if err != nil {
		return err
	}
	defer s.Stop()
	type final struct {
		why   string
		parts []string
	}
	for round := range e.n(40) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		deferred, err := createPartial(s, "")
		if err != nil {
			return err
		}
		sized, err := createPartial(s, strconv.Itoa(uploadLimit/2+1))
		if err != nil {
			return err
		}
		small, err := createPartial(s, "10")
		if err != nil {
			return err
		}
		if code, err := patch(s, small, 0, make([]byte, 10), ""); err != nil || code != http.StatusNoContent {
			return errorf("PATCH of a partial: %d %v", code, err)
		}
		whole, _, _, err := seedState(e, s, l) // its first return is not a partial
		if err != nil {
			return err
		}
		many := make([]string, 0, 2000)
		for range 2000 {
			many = append(many, small)
		}
		finals := []final{
			{"the same deferred partial twice", []string{deferred, deferred}},
			{"the same deferred partial 50 times", repeat(deferred, 50)},
			{"two sized partials over the limit", []string{sized, sized}},
			{"a partial 2000 times", many},
			{"an upload that is not partial", []string{whole, small}},
			{"a missing partial", []string{"/files/" + strings.Repeat("0", 32)}},
			{"a partial of another server", []string{"http://other.invalid" + small}},
			{"a path outside the upload space", []string{"/up/../files/x", "/etc/passwd"}},
			{"a partial in a query", []string{"/files/?id=" + strings.TrimPrefix(small, "/files/")}},
			{"nothing", nil},
		}
		for _, f := range finals {
			r.inputs++
			h := tusHeader.Clone()
			h.Set("Upload-Concat", "final;"+strings.Join(f.parts, " "))
			code, hd, _, err := s.do("POST", "/files/", h, nil, true)
			if err != nil {
				r.bad("%s: %v", f.why, err)
				continue
			}
			if code >= 500 {
				r.bad("%s: %d", f.why, code)
			}
			if code != http.StatusCreated {
				continue
			}
			switch f.why {
			case "the same deferred partial twice", "the same deferred partial 50 times", "a partial 2000 times",
				"an upload that is not partial", "a missing partial", "a partial of another server",
				"a path outside the upload space", "nothing", "two sized partials over the limit":
				r.bad("%s: accepted (201)", f.why)
			}
			// Accepted: it must never grow past the limit.
			u, _ := url.Parse(hd.Get("Location"))
			if round == 0 && strings.Contains(f.why, "deferred") {
				patch(s, deferred, 0, make([]byte, uploadLimit/4), strconv.Itoa(uploadLimit/4))
			}
			code, hd, _, _ = s.do("HEAD", u.Path, tusHeader, nil, true)
			if n, _ := strconv.ParseInt(hd.Get("Upload-Length"), 10, 64); code == http.StatusOK && n > uploadLimit {
				r.escape("%s: the final upload is %d bytes under a limit of %d", f.why, n, uploadLimit)
			}
		}
		if round%10 == 9 && !s.check(r, fmt.Sprintf("%d rounds", round+1)) {
			return nil
		}
	}
	s.check(r, "the concatenation attack")
	return nil
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// hostileValues are what a header's value may be.
var hostileValues = []string{
	"", " ", "0", "1", "-1", "+1", "01", "1.5", "1e3", "0x10", " 7", "7 ", "9223372036854775807", "9223372036854775808",
	"-9223372036854775808", "18446744073709551616", "99999999999999999999999", "?1", "?0", "?", "yes", "true", "1, 2",
	"partial", "final;", "final;/files/", "final;/files/x /files/x", "final; /files/%2e%2e", "1.0.0", "0.2.2", "1.0.0, 1.0.0",
	"sha1 AAAA", "sha1 " + strings.Repeat("A", 5000), "md5 x", "filename", "filename !!!", "filename " + b64(strings.Repeat("\x00", 3000)),
	"a b,a c", strings.Repeat("k v,", 2000), "\xff\xfe", "\u202e", "bytes=0-", "bytes 0-1/2", "*", "3, 4, 5", "8; foo", "inline; filename=\"../../x\"",
	strings.Repeat("9", 1000), "-0", "00000000000000000000000000000001",
}

var hostileHeaders = []string{
	"Upload-Offset", "Upload-Length", "Upload-Defer-Length", "Upload-Metadata", "Upload-Concat", "Upload-Checksum",
	"Tus-Resumable", "Upload-Complete", "Upload-Incomplete", "Upload-Draft-Interop-Version", "Content-Type",
	"Content-Length", "Content-Disposition", "Repr-Digest", "Content-Digest", "X-HTTP-Method-Override", "Transfer-Encoding",
}

func attackHeaders(ctx context.Context, e *env, r *result) error {
	l, s, err := serveLayout(ctx, e, "--max-upload-size", strconv.Itoa(uploadLimit))
	if err != nil {
		return err
	}
	defer s.Stop()
	// Known uploads to aim at: some fresh, some deferred, some finished.
	var targets []string
	for range 5 {
		p, err := createPartial(s, "")
		if err != nil {
			return err
		}
		targets = append(targets, p)
		unfinished, finished, _, err := seedState(e, s, l)
		if err != nil {
			return err
		}
		targets = append(targets, unfinished, finished)
	}
	addr := hostPort(s.URL)
	for i := range e.n(4000) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		method := pick(e, []string{"POST", "POST", "PATCH", "PATCH", "PATCH", "HEAD", "DELETE", "OPTIONS", "GET", "PUT"})
		target := "/files/"
		if method != "POST" || e.rng.IntN(5) == 0 {
			target = pick(e, targets)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer %s\r\n", method, target, token)
		if e.rng.IntN(3) != 0 {
			b.WriteString("Tus-Resumable: 1.0.0\r\n")
		}
		if e.rng.IntN(3) == 0 {
			fmt.Fprintf(&b, "Upload-Draft-Interop-Version: %d\r\n", 3+e.rng.IntN(6))
		}
		var clen string
		for range 1 + e.rng.IntN(5) {
			k, v := pick(e, hostileHeaders), pick(e, hostileValues)
			if k == "Content-Length" {
				clen = v
			}
			if k == "Transfer-Encoding" {
				continue // framing is net/http's, not ferry's
			}
			fmt.Fprintf(&b, "%s: %s\r\n", k, strings.NewReplacer("\r", "", "\n", "").Replace(v))
		}
		body := e.randomBytes(e.rng.IntN(3) * e.rng.IntN(4096))
		if clen == "" {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
		}
		b.WriteString("\r\n")
		req := append([]byte(b.String()), body...)
		r.inputs++
		resp, err := raw(addr, req, 10*time.Second)
		if err != nil {
			continue
		}
		if bytes.HasPrefix(resp, []byte("HTTP/1.1 5")) && !bytes.HasPrefix(resp, []byte("HTTP/1.1 501")) && !bytes.HasPrefix(resp, []byte("HTTP/1.1 507")) {
			r.bad("%s %s with hostile headers: %s", method, target, firstLine(resp))
		}
		if i%1000 == 999 && !s.check(r, fmt.Sprintf("%d requests", i+1)) {
			return nil
		}
	}
	// What the store holds must never pass the limit, whatever was asked.
	for _, t := range targets {
		_, hd, _, _ := s.do("HEAD", t, tusHeader, nil, true)
		if n, _ := strconv.ParseInt(hd.Get("Upload-Offset"), 10, 64); n > uploadLimit {
			r.escape("%s holds %d bytes under a limit of %d", t, n, uploadLimit)
		}
	}
	s.check(r, "the header attack")
	return nil
}

func attackMultipart(ctx context.Context, e *env, r *result) error {
	l, s, err := serveLayout(ctx, e, "--max-upload-size", strconv.Itoa(uploadLimit))
	if err != nil {
		return err
	}
	defer s.Stop()
	names := []string{"a.bin", "../../escape.bin", "/etc/passwd", "..", ".", "", "a\x00b", "a/b/c", "C:\\x", "\u202eexe.txt", strings.Repeat("n", 500), ".hidden", "CON", "x\r\nSet-Cookie: a=b"}
	before, err := snapshot(l.outside, l.root)
	if err != nil {
		return err
	}
	for i := range e.n(300) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		parts := 1 + e.rng.IntN(4)
		var total int
		for range parts {
			name := pick(e, names)
			size := e.rng.IntN(uploadLimit/2 + 1)
			if e.rng.IntN(3) == 0 {
				size = uploadLimit/2 + 1
			}
			w, _ := mw.CreateFormFile("file", name)
			w.Write(make([]byte, size))
			total += size
		}
		mw.Close()
		data := body.Bytes()
		switch i % 5 {
		case 1: // cut the closing boundary
			data = data[:len(data)-len(mw.Boundary())/2]
		case 2: // garbage after the headers of a part
			data = append(bytes.Clone(data[:len(data)/2]), e.randomBytes(200)...)
		}
		r.inputs++
		code, _, resp, err := s.do("POST", "/upload", http.Header{"Content-Type": {mw.FormDataContentType()}}, bytes.NewReader(data), true)
		if err != nil {
			continue
		}
		if code >= 500 {
			r.bad("multipart of %d parts: %d %s", parts, code, resp)
		}
		if code < 300 && total > uploadLimit && i%5 == 0 {
			r.bad("%d parts of %d bytes in all accepted under a limit of %d", parts, total, uploadLimit)
		}
	}
	after, err := snapshot(l.outside, l.root)
	if err != nil {
		return err
	}
	for p := range after {
		if _, ok := before[p]; !ok && !strings.HasPrefix(p, l.uploads+string(filepath.Separator)) {
			r.escape("a multipart upload created %s outside the uploads directory", p)
		}
	}
	s.check(r, "the multipart attack")
	return nil
}

// snapshot lists every file under the dirs.
func snapshot(dirs ...string) (map[string]bool, error) {
	seen := map[string]bool{}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, _ os.DirEntry, err error) error {
			if err == nil {
				seen[p] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return seen, nil
}

func attackDigest(ctx context.Context, e *env, r *result) error {
	root := e.mkdir("digest-root")
	s, err := startServe(ctx, e, root, "")
	if err != nil {
		return err
	}
	defer s.Stop()
	name := filepath.Join(root, "f.bin")
	for i := range e.n(100) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		size := 1 + e.rng.IntN(256<<10)
		if i == 0 {
			if err := os.WriteFile(name, e.randomBytes(size), 0o644); err != nil {
				return err
			}
		} else {
			// Rewrite in place, keep the size and put the mtime back.
			fi, err := os.Stat(name)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(name, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			off := e.rng.Int64N(fi.Size())
			f.WriteAt(e.randomBytes(int(min(fi.Size()-off, 4096))), off)
			f.Close()
			os.Chtimes(name, fi.ModTime(), fi.ModTime())
		}
		r.inputs++
		code, h, body, err := s.do("GET", "/f.bin", http.Header{"Want-Repr-Digest": {"sha-256=10"}}, nil, false)
		if err != nil || code != http.StatusOK {
			r.bad("GET: %d %v", code, err)
			continue
		}
		want, _ := os.ReadFile(name)
		if !bytes.Equal(body, want) {
			continue // rewritten while served; the digest is judged against what was sent
		}
		got := h.Get("Repr-Digest")
		if got == "" {
			continue // no digest is an honest answer
		}
		sum := sha256Sum(want)
		if !strings.Contains(got, b64enc.EncodeToString(sum)) {
			r.loss("after rewrite %d, Repr-Digest %s does not match the file", i, got)
		}
	}
	s.check(r, "the digest attack")
	return nil
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

func init() {
	register(class{"flood", "creations as fast as one client can send them, and metadata of NUL bytes, under the default limits", attackFlood})
}

func attackFlood(ctx context.Context, e *env, r *result) error {
	l, err := newLayout(e)
	if err != nil {
		return err
	}
	s, err := startServe(ctx, e, l.root, l.uploads, "--token", token) // the default limits
	if err != nil {
		return err
	}
	defer s.Stop()
	var created int
	start := time.Now()
	for range e.n(3000) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.inputs++
		h := tusHeader.Clone()
		h.Set("Upload-Length", "10")
		code, hd, _, err := s.do("POST", "/files/", h, nil, true)
		switch {
		case err != nil:
			r.bad("creation: %v", err)
		case code == http.StatusCreated:
			created++
		case code == http.StatusTooManyRequests:
			if hd.Get("Retry-After") == "" {
				r.bad("a 429 without Retry-After")
			}
		default:
			r.bad("creation: %d", code)
		}
	}
	took := time.Since(start)
	// The default: a burst of 100, then 20 a second.
	if allowed := 100 + int(20*took.Seconds()) + 20; created > allowed {
		r.bad("%d creations accepted in %.1fs from one client (the default allows about %d)", created, took.Seconds(), allowed)
	}
	// Metadata: over 16 KiB refused, under it stored compactly.
	for _, n := range []int{30 << 10, 10 << 10} {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Second) // let the bucket refill for this creation
		r.inputs++
		h := tusHeader.Clone()
		h.Set("Upload-Length", "10")
		h.Set("Upload-Metadata", "k "+b64(strings.Repeat("\x00", n)))
		code, hd, _, err := s.do("POST", "/files/", h, nil, true)
		if err != nil {
			r.bad("metadata of %d NULs: %v", n, err)
			continue
		}
		if n > 16<<10 {
			if code != http.StatusBadRequest && code != http.StatusRequestHeaderFieldsTooLarge {
				r.bad("metadata of %d NUL bytes: %d, want 400", n, code)
			}
			continue
		}
		if code != http.StatusCreated {
			r.bad("metadata of %d NUL bytes: %d, want 201", n, code)
			continue
		}
		u, _ := url.Parse(hd.Get("Location"))
		info := filepath.Join(l.uploads, filepath.Base(u.Path)+".info")
		if fi, err := os.Stat(info); err == nil && fi.Size() > int64(2*n)+4096 {
			r.bad("metadata of %d NUL bytes takes %d bytes on disk", n, fi.Size())
		}
	}
	s.check(r, "the flood")
	return nil
}

func init() {
	register(class{"slowbody", "request headers and bodies trickled or stalled on many connections at once: every one must be cut by the idle timeouts", attackSlowBody})
}

func attackSlowBody(ctx context.Context, e *env, r *result) error {
	const idle = 2 * time.Second
	l, s, err := serveLayout(ctx, e, "--body-idle-timeout", idle.String(), "--stream-idle-timeout", idle.String(),
		"--header-timeout", idle.String(), "--max-uploads-per-client", "0")
	if err != nil {
		return err
	}
	defer s.Stop()
	unfinished, _, _, err := seedState(e, s, l)
	if err != nil {
		return err
	}
	auth := "Authorization: Bearer " + token + "\r\n"
	openers := []struct {
		what string
		head string
	}{
		{"a trickled header", "GET /pub.txt HTTP/1.1\r\nHost: x\r\nX-Slow: "},
		{"a stalled tus PATCH", "PATCH " + unfinished + " HTTP/1.1\r\nHost: x\r\n" + auth + "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 100000\r\n\r\n"},
		{"a stalled tus creation", "POST /files/ HTTP/1.1\r\nHost: x\r\n" + auth + "Tus-Resumable: 1.0.0\r\nUpload-Length: 100000\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: 100000\r\n\r\n"},
		{"a stalled form", "POST /upload HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n"},
		{"a stalled chunked stream", "POST /stream/slow%d HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n"},
		{"a stalled draft upload", "POST /files/ HTTP/1.1\r\nHost: x\r\n" + auth + "Upload-Draft-Interop-Version: 6\r\nUpload-Complete: ?1\r\nContent-Length: 100000\r\n\r\n"},
	}
	addr := hostPort(s.URL)
	type conn struct {
		what   string
		closed chan time.Duration
	}
	var conns []conn
	for i := range e.n(120) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		o := openers[i%len(openers)]
		head := o.head
		if strings.Contains(head, "%d") {
			head = fmt.Sprintf(head, i)
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			r.bad("dial: %v", err)
			continue
		}
		r.inputs++
		ch := make(chan time.Duration, 1)
		conns = append(conns, conn{o.what, ch})
		trickle := i%2 == 0 // half trickle a byte a bit slower than the timeout, half stall
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * idle))
			c.Write([]byte(head))
			began := time.Now()
			if trickle {
				go func() {
					for range 8 {
						time.Sleep(idle + idle/2)
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					}
				}()
			}
			io.Copy(io.Discard, c) // until the server closes it, or the deadline
			ch <- time.Since(began)
		}()
	}
	for _, c := range conns {
		if d := <-c.closed; d >= 9*idle {
			r.bad("%s: still open after %v", c.what, d.Round(time.Second))
		}
	}
	s.check(r, "the slow-body attack")
	return nil
}
