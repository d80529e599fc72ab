package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"mime/multipart"
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
	code, hd, _, err := s.do("POST", "/files/", h, nil, true)
	if err != nil || code != http.StatusCreated {
		return "", errorf("creating a partial upload: %d %v", code, err)
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
	l, err := newLayout(e)
	if err != nil {
		return err
	}
	s, err := serveLayout(ctx, e, l, "--max-upload-size", strconv.Itoa(uploadLimit))
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
	l, err := newLayout(e)
	if err != nil {
		return err
	}
	s, err := serveLayout(ctx, e, l, "--max-upload-size", strconv.Itoa(uploadLimit))
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
	l, err := newLayout(e)
	if err != nil {
		return err
	}
	s, err := serveLayout(ctx, e, l, "--max-upload-size", strconv.Itoa(uploadLimit))
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
