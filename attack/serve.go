package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The server classes run against `ferry serve` in its riskiest common
// layout: the default root ".", with the uploads directory inside it, a
// bearer token, and a symlink in the root that points out of it.

func init() {
	register(class{"paths", "request targets that try to leave the root: dot segments, encodings, backslashes, NUL, symlinks pointing out, long paths; sent raw and unauthenticated", attackPaths})
	register(class{"state", "unauthenticated reads of upload and stream state through every URL space, spelling and case", attackState})
	register(class{"content", "stored streams and uploads of active content (HTML, SVG, XML, script) read back", attackContent})
	register(class{"concat", "tus final uploads naming repeated, foreign, finished, missing and too many partials, under a size limit", attackConcat})
	register(class{"headers", "random hostile tus and IETF draft requests: header values at the int64 edges, malformed fields, lying offsets and lengths", attackHeaders})
	register(class{"multipart", "multipart/form-data bodies over the size limit in several parts, with hostile names and malformed framing", attackMultipart})
	register(class{"digest", "files rewritten in place keeping size and mtime, then read with Want-Repr-Digest", attackDigest})
}

// layout is a served root with canaries around it.
type layout struct {
	root, outside, uploads string
	outsideCanary          string // in a file outside the root
	stateCanaries          []string
}

func newLayout(e *env) (*layout, error) {
	base := e.mkdir("layout")
	l := &layout{
		root:          filepath.Join(base, "root"),
		outside:       filepath.Join(base, "outside"),
		outsideCanary: fmt.Sprintf("OUTSIDE-CANARY-%016x", e.rng.Uint64()),
	}
	l.uploads = filepath.Join(l.root, "up")
	for _, d := range []string{l.root, l.outside, filepath.Join(l.root, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		filepath.Join(l.root, "pub.txt"):        "public file\n",
		filepath.Join(l.root, "sub", "a.txt"):   "a\n",
		filepath.Join(l.outside, "secret.txt"):  l.outsideCanary,
		filepath.Join(base, "secret.txt"):       l.outsideCanary,
		filepath.Join(l.outside, "index.html"):  l.outsideCanary,
		filepath.Join(l.root, "..secret.txt"):   "dot dot is a name\n",
		filepath.Join(l.root, "sub", ".hidden"): "hidden\n",
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	links := map[string]string{
		filepath.Join(l.root, "out"):        l.outside,
		filepath.Join(l.root, "sec.txt"):    filepath.Join(l.outside, "secret.txt"),
		filepath.Join(l.root, "sub", "up"):  "../../outside",
		filepath.Join(l.root, "abs"):        "/etc",
		filepath.Join(l.root, "loop"):       "loop",
		filepath.Join(l.root, "sub", "dot"): "..",
	}
	for name, target := range links {
		if err := os.Symlink(target, name); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// leaks reports which canary, if any, body holds.
func (l *layout) leaks(body []byte, withState bool) string {
	if bytes.Contains(body, []byte(l.outsideCanary)) {
		return "the file outside the root"
	}
	if bytes.Contains(body, []byte("root:x:0:0")) {
		return "/etc/passwd"
	}
	if withState {
		for _, c := range l.stateCanaries {
			if bytes.Contains(body, []byte(c)) {
				return "upload state (" + c[:12] + ")"
			}
		}
	}
	return ""
}

// serveLayout makes a layout and starts ferry serve on it, with uploads
// inside the root and more flags. The creation rate is lifted: these
// classes create many uploads on purpose, and the flood class tests the
// limit.
func serveLayout(ctx context.Context, e *env, args ...string) (*layout, *server, error) {
	l, err := newLayout(e)
	if err != nil {
		return nil, nil, err
	}
	args = append([]string{"--token", token, "--creation-rate", "0"}, args...)
	s, err := startServe(ctx, e, l.root, l.uploads, args...)
	return l, s, err
}

// seedState creates an unfinished upload, a finished one and a stream,
// each holding a canary, and returns their upload URL paths.
func seedState(e *env, s *server, l *layout) (unfinished, finished, stream string, err error) {
	canary := func(kind string) string {
		c := fmt.Sprintf("STATE-CANARY-%s-%016x", kind, e.rng.Uint64())
		l.stateCanaries = append(l.stateCanaries, c)
		return c
	}
	create := func(body string, length int) (string, error) {
		h := tusHeader.Clone()
		h.Set("Upload-Length", strconv.Itoa(length))
		h.Set("Upload-Metadata", "filename "+b64(canary("name")+".bin"))
		h.Set("Content-Type", "application/offset+octet-stream")
		return s.create(h, strings.NewReader(body))
	}
	part := canary("unfinished")
	if unfinished, err = create(part, len(part)*2); err != nil {
		return
	}
	whole := canary("finished")
	if finished, err = create(whole, len(whole)); err != nil {
		return
	}
	stream = "/stream/" + canary("streamname")
	code, _, _, err := s.do("POST", stream, nil, strings.NewReader(canary("stream")), true)
	if err != nil || code >= 300 {
		return "", "", "", errorf("posting a stream: %d %v", code, err)
	}
	return
}

func b64(s string) string { return b64enc.EncodeToString([]byte(s)) }

// pathPieces are what hostile request targets are made of.
var pathPieces = []string{
	"..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%252e%252e", "%c0%ae%c0%ae", "\u2024\u2024", "%u002e%u002e",
	".", "%2e", "", "/", "%2f", "%2F", "%5c", "\\", "%00", "\x00", "%0a", "%0d%0a",
	"out", "sec.txt", "abs", "loop", "sub", "sub/up", "sub/dot", "up", "UP", "Up", "up.", "up%20", "up%2f", "%75p",
	"secret.txt", "passwd", "etc", "outside", "pub.txt", "..secret.txt", ".hidden", "files", "stream", "streams",
	"index.html", "~", "*", "?", "#", ";", "%3f", "%23", "%3b", strings.Repeat("a", 300), strings.Repeat("../", 40),
}

func randomTarget(e *env, l *layout) string {
	var b strings.Builder
	if e.rng.IntN(8) != 0 {
		b.WriteByte('/')
	}
	for range 1 + e.rng.IntN(7) {
		b.WriteString(pick(e, pathPieces))
		if e.rng.IntN(4) != 0 {
			b.WriteString(pick(e, []string{"/", "/", "/", "//", "%2f", "\\", "/./"}))
		}
	}
	switch e.rng.IntN(10) {
	case 0:
		return "http://127.0.0.1" + b.String() // absolute-form
	case 1:
		return l.outside + "/secret.txt"
	}
	return b.String()
}

func attackPaths(ctx context.Context, e *env, r *result) error {
	l, s, err := serveLayout(ctx, e)
	if err != nil {
		return err
	}
	defer s.Stop()
	if _, _, _, err := seedState(e, s, l); err != nil {
		return err
	}
	addr := hostPort(s.URL)
	for i := range e.n(3000) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		target := randomTarget(e, l)
		method := pick(e, []string{"GET", "GET", "GET", "HEAD", "OPTIONS"})
		req := method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
		if e.rng.IntN(4) == 0 {
			req += "Range: bytes=0-\r\n"
		}
		req += "\r\n"
		r.inputs++
		resp, err := raw(addr, []byte(req), 10*time.Second)
		if err != nil {
			continue // a refused connection shows in the health check below
		}
		if what := l.leaks(resp, true); what != "" {
			r.escape("%s %q returned %s", method, target, what)
		}
		if bytes.HasPrefix(resp, []byte("HTTP/1.1 5")) {
			r.bad("%s %q: %s", method, target, firstLine(resp))
		}
		if i%500 == 499 && !s.check(r, fmt.Sprintf("%d requests", i+1)) {
			return nil
		}
	}
	s.check(r, "the path attack")
	return nil
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(line)
}

func attackState(ctx context.Context, e *env, r *result) error {
	l, s, err := serveLayout(ctx, e)
	if err != nil {
		return err
	}
	defer s.Stop()
	unfinished, finished, stream, err := seedState(e, s, l)
	if err != nil {
		return err
	}
	// Every name the state has on disk, and every URL it has.
	var names []string
	err = filepath.WalkDir(l.uploads, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != l.uploads {
			rel, _ := filepath.Rel(l.root, p)
			names = append(names, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	urls := []string{unfinished, finished, stream, unfinished + "/", finished + "?x=1", "/files/", "/stream/"}
	spell := func(p string) []string {
		out := []string{p, strings.ToUpper(p), strings.Replace(p, "/", "//", 1), strings.Replace(p, "/up/", "/sub/../up/", 1),
			strings.Replace(p, "u", "%75", 1), strings.Replace(p, ".", "%2e", 1), p + "%00", p + "/", "/out/.." + p, "/./" + strings.TrimPrefix(p, "/")}
		return out
	}
	var targets []string
	for _, p := range append(names, urls...) {
		targets = append(targets, spell(p)...)
	}
	addr := hostPort(s.URL)
	for round := range max(1, e.n(10)) {
		for _, target := range targets {
			for _, method := range []string{"GET", "HEAD"} {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				hdr := "Host: x\r\nConnection: close\r\n"
				switch round % 3 {
				case 1:
					hdr += "Authorization: Bearer wrong\r\n"
				case 2:
					hdr += "Authorization: Basic " + b64("x:"+token) + "\r\n"
				}
				r.inputs++
				resp, err := raw(addr, []byte(method+" "+target+" HTTP/1.1\r\n"+hdr+"\r\n"), 10*time.Second)
				if err != nil {
					continue
				}
				if what := l.leaks(resp, true); what != "" {
					r.escape("unauthenticated %s %s returned %s", method, target, what)
				}
				if method == "HEAD" && bytes.HasPrefix(resp, []byte("HTTP/1.1 200")) && isState(target) {
					r.escape("unauthenticated HEAD %s: 200 (the state's existence and size)", target)
				}
				if bytes.HasPrefix(resp, []byte("HTTP/1.1 5")) {
					r.bad("%s %s: %s", method, target, firstLine(resp))
				}
			}
		}
	}
	s.check(r, "the state attack")
	return nil
}

// isState reports whether a target names upload state by its disk name.
func isState(target string) bool {
	t := strings.ToLower(target)
	return strings.Contains(t, ".bin") || strings.Contains(t, ".info") || strings.Contains(t, "streams/")
}

// activeTypes are media types a browser may run or render as a document.
var activeTypes = []string{"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
	"text/javascript", "application/javascript", "application/ecmascript", "text/ecmascript", "multipart/x-mixed-replace", "application/pdf", "text/css"}

func isActive(contentType string) bool {
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	if ct == "" {
		return true // the browser sniffs
	}
	for _, a := range activeTypes {
		if ct == a {
			return true
		}
	}
	return strings.HasSuffix(ct, "+xml")
}

// safeResponse says what is wrong with how user content was served, if
// anything: it must carry nosniff, and be either an inert type or an
// attachment.
func safeResponse(h http.Header) string {
	if !strings.EqualFold(h.Get("X-Content-Type-Options"), "nosniff") {
		return "no X-Content-Type-Options: nosniff"
	}
	disp := strings.ToLower(h.Get("Content-Disposition"))
	if isActive(h.Get("Content-Type")) && !strings.HasPrefix(disp, "attachment") {
		return fmt.Sprintf("Content-Type %q served inline", h.Get("Content-Type"))
	}
	if strings.ContainsAny(h.Get("Content-Disposition"), "\r\n") {
		return "a line break in Content-Disposition"
	}
	return ""
}

var activeBodies = []string{
	"<!doctype html><script>alert(1)</script>",
	`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`,
	`<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>`,
	"alert(document.cookie)",
	"%PDF-1.4 ...",
	"\xef\xbb\xbf<html><body onload=alert(1)>",
}

var activeNames = []string{"evil.html", "evil.htm", "evil.svg", "evil.xhtml", "evil.xml", "evil.js", "evil.mjs", "evil.pdf",
	"evil.css", "evil", "evil.txt", "evil.png", "evil.HTML", "evil.html.", "evil.html%20", "e\"vil.html", "e%0d%0aSet-Cookie:x=1.html",
	"évil.html", "evil.wav", "evil.mp4"}

func attackContent(ctx context.Context, e *env, r *result) error {
	_, s, err := serveLayout(ctx, e)
	if err != nil {
		return err
	}
	defer s.Stop()
	for i := range e.n(200) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		body := pick(e, activeBodies)
		name := fmt.Sprintf("%d-%s", i, pick(e, activeNames))
		var get string
		if i%2 == 0 {
			get = "/stream/" + name
			hdr := http.Header{}
			if e.rng.IntN(2) == 0 {
				hdr.Set("Content-Type", pick(e, activeTypes))
			}
			code, _, _, err := s.do("POST", get, hdr, strings.NewReader(body), true)
			if err != nil || code >= 500 {
				r.bad("POST %s: %d %v", get, code, err)
				continue
			}
			if code >= 400 {
				r.inputs++ // refused: nothing to serve
				continue
			}
		} else {
			hdr := http.Header{"Tus-Resumable": {"1.0.0"}, "Content-Type": {"application/offset+octet-stream"}}
			hdr.Set("Upload-Length", strconv.Itoa(len(body)))
			hdr.Set("Upload-Metadata", "filename "+b64(name)+",filetype "+b64(pick(e, activeTypes)))
			if get, err = s.create(hdr, strings.NewReader(body)); err != nil {
				r.bad("tus creation of %s: %v", name, err)
				continue
			}
		}
		r.inputs++
		// GET only: HEAD of an upload URL is the tus offset check, with
		// no content to render.
		for _, method := range []string{"GET"} {
			code, h, _, err := s.do(method, get, nil, nil, true)
			if err != nil || code != http.StatusOK {
				r.bad("%s %s: %d %v", method, get, code, err)
				continue
			}
			if what := safeResponse(h); what != "" {
				r.escape("%s %s (%s): %s", method, get, name, what)
			}
		}
	}
	s.check(r, "the content attack")
	return nil
}
