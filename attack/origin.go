package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// A hostile origin serves one resource, two versions of it, with faults
// chosen per request from a seeded generator. The content is what a client
// must end with, or fail.

type fault int

const (
	faultNone        fault = iota
	faultShiftRange        // Content-Range shifted by one, body right
	faultIgnoreRange       // 200 and the whole body to a ranged request
	faultChangeETag        // from now on, version 2 with another ETag
	faultGzipRange         // gzip on a 206 whatever Accept-Encoding said
	faultCut               // close the connection part way through the body
	faultShortLength       // Content-Length larger than the body, then close
	faultWrongStart        // a 206 from byte 0 whatever was asked
	faultWrongTotal        // Content-Range with another total
	faultBadDigest         // a Repr-Digest that does not match
	faultStatus            // a 500 or 503 with Retry-After: 0
	faultSwapBody          // version 2's bytes under version 1's ETag
	numFaults
)

var faultNames = [...]string{"none", "shifted Content-Range", "200 to a range", "ETag change", "gzip on 206", "cut body",
	"Content-Length beyond the body", "206 from byte 0", "another total", "wrong Repr-Digest", "5xx", "other bytes, same ETag"}

func (f fault) String() string { return faultNames[f] }

type origin struct {
	*httptest.Server
	versions [2][]byte
	faults   []fault // the faults this origin may use
	rate     int     // 1 in rate requests get a fault

	mu      sync.Mutex
	rng     *rand.Rand
	version int
	served  atomic.Int64
}

func newOrigin(seed uint64, size int, faults []fault, rate int) *origin {
	o := &origin{faults: faults, rate: rate, rng: rand.New(rand.NewPCG(seed, 7))}
	for v := range o.versions {
		b := make([]byte, size)
		r := rand.New(rand.NewPCG(seed, uint64(v)))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		o.versions[v] = b
	}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	return o
}

// sums are the digests of the versions: a good result is one of them.
func (o *origin) sums() []string { return []string{sum(o.versions[0]), sum(o.versions[1])} }

func (o *origin) pickFault() fault {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.faults) == 0 || o.rng.IntN(o.rate) != 0 {
		return faultNone
	}
	return o.faults[o.rng.IntN(len(o.faults))]
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	o.served.Add(1)
	f := o.pickFault()
	o.mu.Lock()
	if f == faultChangeETag {
		o.version = 1
	}
	v := o.version
	o.mu.Unlock()
	body := o.versions[v]
	etag := fmt.Sprintf(`"v%d"`, v+1)
	if f == faultSwapBody {
		body = o.versions[1-v]
	}
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
	if f == faultStatus {
		h.Set("Retry-After", "0")
		http.Error(w, "try again", pick2(o, http.StatusInternalServerError, http.StatusServiceUnavailable))
		return
	}
	digest := sum256b64(o.versions[v])
	if f == faultBadDigest {
		digest = sum256b64(o.versions[1-v])
	}
	if strings.Contains(r.Header.Get("Want-Repr-Digest"), "sha-256") {
		h.Set("Repr-Digest", "sha-256=:"+digest+":")
	}
	size := int64(len(body))
	start, end, ranged := int64(0), size-1, false
	if rs := r.Header.Get("Range"); rs != "" && f != faultIgnoreRange {
		ir := r.Header.Get("If-Range")
		if ir == "" || ir == etag {
			if a, b, ok := parseRange(rs, size); ok {
				start, end, ranged = a, b, true
			}
		}
	}
	if f == faultWrongStart && ranged {
		end -= start
		start = 0
	}
	part := body[start : end+1]
	if ranged {
		s, e, total := start, end, size
		switch f {
		case faultShiftRange:
			s, e = s+1, e+1
		case faultWrongTotal:
			total = size + 1
		}
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", s, e, total))
	}
	status := http.StatusOK
	if ranged {
		status = http.StatusPartialContent
	}
	if f == faultGzipRange && ranged {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(part)
		zw.Close()
		h.Set("Content-Encoding", "gzip")
		part = z.Bytes()
	}
	switch f {
	case faultShortLength:
		h.Set("Content-Length", strconv.Itoa(len(part)+1000))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			w.Write(part[:len(part)/2])
		}
		panicAbort()
	case faultCut:
		h.Set("Content-Length", strconv.Itoa(len(part)))
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			w.Write(part[:len(part)/3])
		}
		panicAbort()
	}
	h.Set("Content-Length", strconv.Itoa(len(part)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(part)
	}
}

// panicAbort ends the response by cutting the connection, as net/http
// does for http.ErrAbortHandler (and logs nothing).
func panicAbort() { panic(http.ErrAbortHandler) }

func pick2(o *origin, a, b int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rng.IntN(2) == 0 {
		return a
	}
	return b
}

// parseRange reads one "bytes=a-b" or "bytes=a-" range within size.
func parseRange(s string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(s, "bytes=")
	a, b, dash := strings.Cut(spec, "-")
	if !found || !dash || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size - 1
	if b != "" {
		if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
			return 0, 0, false
		}
		end = min(end, size-1)
	}
	return start, end, true
}

func sum256b64(b []byte) string { return b64enc.EncodeToString(sha256Sum(b)) }
