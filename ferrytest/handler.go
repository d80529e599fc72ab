package ferrytest

import (
	"compress/gzip"
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// logRequests records every request in s.requests before handing it to h.
func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, Request{
			Method:         r.Method,
			Path:           r.URL.Path,
			Range:          r.Header.Get("Range"),
			IfRange:        r.Header.Get("If-Range"),
			AcceptEncoding: r.Header.Get("Accept-Encoding"),
			Proto:          r.Proto,
		})
		rec := &recorder{ResponseWriter: w, s: s, i: len(s.requests) - 1}
		s.mu.Unlock()
		h.ServeHTTP(rec, r)
		if r.Context().Err() == nil {
			// net/http sends 200 for a handler that wrote nothing.
			rec.setStatus(http.StatusOK)
		}
	})
}

// recorder keeps the log entry of its request up to date. It records the
// status and the body bytes before passing them on, so the log never lags
// behind what the client has received.
type recorder struct {
	http.ResponseWriter
	s      *Server
	i      int
	status int
}

func (rec *recorder) setStatus(code int) {
	if rec.status != 0 || code < 200 {
		return
	}
	rec.status = code
	rec.s.mu.Lock()
	rec.s.requests[rec.i].Status = code
	rec.s.mu.Unlock()
}

func (rec *recorder) addBytes(n int) {
	rec.s.mu.Lock()
	rec.s.requests[rec.i].BodyBytes += int64(n)
	rec.s.mu.Unlock()
}

func (rec *recorder) WriteHeader(code int) {
	rec.setStatus(code)
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	rec.setStatus(http.StatusOK)
	rec.addBytes(len(p))
	n, err := rec.ResponseWriter.Write(p)
	if n < len(p) {
		rec.addBytes(n - len(p))
	}
	return n, err
}

func (rec *recorder) Flush() { _ = http.NewResponseController(rec.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// route dispatches the special paths and hands everything else to
// serveResource.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok\n")
		return
	}
	if k, ok := strings.CutPrefix(r.URL.Path, "/redirect/"); ok && s.cfg.redirects > 0 {
		if n, err := strconv.Atoi(k); err == nil && n >= 1 && n <= s.cfg.redirects {
			to := "/file"
			if n > 1 {
				to = "/redirect/" + strconv.Itoa(n-1)
			}
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
	}
	s.serveResource(w, r)
}

// plain answers with code and a short text body.
func plain(w http.ResponseWriter, r *http.Request, code int, text string) {
	h := w.Header()
	if code == http.StatusNoContent || code == http.StatusNotModified || r.Method == http.MethodHead {
		w.WriteHeader(code)
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(code)
	io.WriteString(w, text)
}

func statusText(code int) string {
	t := http.StatusText(code)
	if t == "" {
		t = "status " + strconv.Itoa(code)
	}
	return t + "\n"
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		plain(w, r, http.StatusMethodNotAllowed, statusText(http.StatusMethodNotAllowed))
		return
	}
	if cfg.slowFirstByte > 0 && !sleep(r.Context(), cfg.slowFirstByte) {
		return
	}
	if s.take(&s.retry) {
		w.Header().Set("Retry-After", cfg.retryValue)
		plain(w, r, cfg.retryStatus, "retry later\n")
		return
	}
	if r.Method == http.MethodHead {
		if cfg.refuseHEAD != 0 {
			if cfg.refuseHEAD == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", "GET")
			}
			w.WriteHeader(cfg.refuseHEAD)
			return
		}
		v := s.currentVersion()
		s.setHeaders(w, v)
		w.Header().Set("Content-Length", strconv.FormatInt(v.data.size, 10))
		w.WriteHeader(http.StatusOK)
		return
	}
	if s.take(&s.status) {
		plain(w, r, cfg.status, statusText(cfg.status))
		return
	}

	s.mu.Lock()
	v := s.current()
	s.served++
	s.mu.Unlock()

	size := v.data.size
	start, length, code := int64(0), size, http.StatusOK
	if rh := r.Header.Get("Range"); rh != "" && cfg.acceptRanges && !cfg.ignoreRange && ifRangeHolds(r.Header.Get("If-Range"), v) {
		var ok bool
		start, length, ok = parseRange(rh, size)
		switch {
		case !ok:
			start, length = 0, size
		case length < 0:
			code = http.StatusRequestedRangeNotSatisfiable
		default:
			code = http.StatusPartialContent
		}
	}

	h := w.Header()
	s.setHeaders(w, v)
	if code == http.StatusRequestedRangeNotSatisfiable {
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		h.Set("Content-Length", "0")
		w.WriteHeader(code)
		return
	}
	bw := &bodyWriter{w: w, ctx: r.Context(), dropAt: -1, stallAt: -1, rate: cfg.throttle}
	if s.take(&s.drop) {
		bw.dropAt = cfg.dropAfter
	}
	if s.take(&s.stall) {
		bw.stallAt, bw.stallFor = cfg.stallAfter, cfg.stallFor
	}
	gz := false
	if code == http.StatusPartialContent {
		first, last := start, start+length-1
		if s.take(&s.wrongCR) {
			first, last = first+1, last+1
		}
		h.Set("Content-Range", "bytes "+strconv.FormatInt(first, 10)+"-"+strconv.FormatInt(last, 10)+"/"+strconv.FormatInt(size, 10))
		gz = cfg.gzipRanged
	}
	if gz {
		h.Set("Content-Encoding", "gzip")
	} else {
		h.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	w.WriteHeader(code)

	var dst io.Writer = bw
	var zw *gzip.Writer
	if gz {
		zw, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed)
		dst = zw
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for off, end := start, start+length; off < end; {
		n := min(int64(len(buf)), end-off)
		v.data.fill(buf[:n], off)
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
		off += n
	}
	if zw != nil {
		zw.Close()
	}
}

// setHeaders sets the headers every 200, 206 and 416 answer carries.
func (s *Server) setHeaders(w http.ResponseWriter, v *version) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	if s.cfg.acceptRanges {
		h.Set("Accept-Ranges", "bytes")
	}
	if v.etag != "" {
		h.Set("ETag", v.etag)
	}
	if !v.lastModified.IsZero() {
		h.Set("Last-Modified", v.lastModified.UTC().Format(http.TimeFormat))
	}
}

// ifRangeHolds reports whether a Range request carrying the If-Range value
// ir may be answered with partial content (RFC 9110 section 13.1.5): ir
// is empty, or it is the current strong ETag, or it is exactly the
// current Last-Modified date. A weak ETag never matches.
func ifRangeHolds(ir string, v *version) bool {
	ir = strings.TrimSpace(ir)
	switch {
	case ir == "":
		return true
	case strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/"):
		return v.etag != "" && !strings.HasPrefix(v.etag, "W/") && ir == v.etag
	default:
		t, err := http.ParseTime(ir)
		return err == nil && !v.lastModified.IsZero() && t.Equal(v.lastModified)
	}
}

// parseRange interprets a Range header for a representation of size bytes
// (RFC 9110 section 14.2). It handles a single byte range: "bytes=a-b",
// "bytes=a-" or "bytes=-n". ok is false when the header is to be ignored
// (another unit, a syntax error, or several ranges); a range that is valid
// but unsatisfiable gives ok true and length -1.
func parseRange(h string, size int64) (start, length int64, ok bool) {
	unit, spec, found := strings.Cut(h, "=")
	if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return 0, 0, false
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		n, ok := parseDigits(last)
		if !ok {
			return 0, 0, false
		}
		if n == 0 || size == 0 {
			return 0, -1, true
		}
		n = min(n, size)
		return size - n, n, true
	}
	a, ok := parseDigits(first)
	if !ok {
		return 0, 0, false
	}
	b := int64(math.MaxInt64)
	if last != "" {
		if b, ok = parseDigits(last); !ok || b < a {
			return 0, 0, false
		}
	}
	if a >= size {
		return 0, -1, true
	}
	b = min(b, size-1)
	return a, b - a + 1, true
}

// parseDigits parses a non-empty string of ASCII digits, saturating at
// math.MaxInt64.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// bodyWriter writes a response body with the faults of one response: a cut
// before body byte dropAt, a pause before byte stallAt, and pacing at rate
// bytes per second. Positions count bytes as sent.
type bodyWriter struct {
	w        http.ResponseWriter
	ctx      context.Context
	written  int64
	dropAt   int64 // < 0: none
	stallAt  int64 // < 0: none
	stallFor time.Duration
	rate     int64 // bytes per second; 0: unlimited
	start    time.Time
}

func (b *bodyWriter) flush() { _ = http.NewResponseController(b.w).Flush() }

func (b *bodyWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		// A fault happens when the byte at its position is about to be
		// sent, so a body that ends first completes normally.
		if b.written == b.dropAt {
			b.flush()
			panic(http.ErrAbortHandler)
		}
		if b.written == b.stallAt {
			b.flush()
			if !sleep(b.ctx, b.stallFor) {
				return n, b.ctx.Err()
			}
			b.stallAt = -1
			b.start = time.Time{} // the pause does not count against the rate
		}
		chunk := p
		if b.dropAt > b.written {
			chunk = chunk[:min(int64(len(chunk)), b.dropAt-b.written)]
		}
		if b.stallAt > b.written {
			chunk = chunk[:min(int64(len(chunk)), b.stallAt-b.written)]
		}
		if b.rate > 0 {
			if err := b.pace(); err != nil {
				return n, err
			}
			chunk = chunk[:min(int64(len(chunk)), max(1, min(b.rate/10, 16<<10)))]
		}
		m, err := b.w.Write(chunk)
		n += m
		b.written += int64(m)
		if err != nil {
			return n, err
		}
		if b.rate > 0 {
			b.flush()
		}
		p = p[m:]
	}
	return n, nil
}

// pace waits until the bytes written so far are due at the configured rate.
func (b *bodyWriter) pace() error {
	now := time.Now()
	if b.start.IsZero() {
		b.start = now.Add(-time.Duration(float64(b.written) / float64(b.rate) * float64(time.Second)))
	}
	due := b.start.Add(time.Duration(float64(b.written) / float64(b.rate) * float64(time.Second)))
	if d := due.Sub(now); d > 0 && !sleep(b.ctx, d) {
		return b.ctx.Err()
	}
	return nil
}
