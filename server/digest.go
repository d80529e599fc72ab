package server

import (
	"container/list"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// digestAlg is a digest algorithm from the IANA Hash Algorithms for HTTP
// Digest Fields registry (RFC 9530 §7.2) that ferry computes.
type digestAlg struct {
	name string
	new  func() hash.Hash
}

// digestAlgs lists the algorithms ferry serves, in the order that breaks a
// tie between equal preferences: sha-256 is cheaper and universally known.
var digestAlgs = []digestAlg{
	{"sha-256", sha256.New},
	{"sha-512", sha512.New},
}

// wantedDigest picks the algorithm for a request's Want-Repr-Digest field
// lines: the supported one with the highest preference above 0, where 0
// means "not acceptable" (RFC 9530 §4). Multiple lines form one Dictionary
// (RFC 8941 §4.2). ok is false when nothing acceptable was asked for or the
// field is malformed, and then no Repr-Digest is sent.
func wantedDigest(lines []string) (alg digestAlg, ok bool) {
	if len(lines) == 0 {
		return digestAlg{}, false
	}
	prefs, valid := parseWantDigest(strings.Join(lines, ", "))
	if !valid {
		return digestAlg{}, false
	}
	var best int64
	for _, a := range digestAlgs {
		var w int64
		for _, p := range prefs {
			if p.alg == a.name {
				w = p.weight
			}
		}
		if w > best {
			alg, best, ok = a, w, true
		}
	}
	return alg, ok
}

// formatDigest renders one Repr-Digest member: the key and the digest as a
// Byte Sequence, standard base64 between colons (RFC 8941 §3.3.5).
func formatDigest(alg string, sum []byte) string {
	return alg + "=:" + base64.StdEncoding.EncodeToString(sum) + ":"
}

// errDigestFileChange reports a file that is no longer the version a digest
// was asked for; the digest is then left out rather than wrong.
var errDigestFileChange = errors.New("server: file changed while its digest was computed")

// racyWindow is how recent a file's last change may be, when its hashing
// starts, for the digest not to be kept. A file system stamps a change with
// a coarse clock (a kernel tick, or a whole second or two on some), so a
// second rewrite within the same tick as the first can leave every field of
// the ETag as it was. A digest of a file changed that recently is served to
// the requests that waited for it, having been checked against the file
// before and after the pass, but not cached: the next request hashes again,
// until the change is old enough to be told apart from any later one. This
// is git's "racy clean" rule.
const racyWindow = 2 * time.Second

// hashFile computes the digest of the file at name, refusing to produce one
// when the file is not, or stops being, the version etag names: the result
// is cached under that ETag. It streams the file in fixed-size reads. keep
// is false when the file changed too recently to cache the digest (see
// racyWindow).
func (s *Server) hashFile(ctx context.Context, name, etag string, alg digestAlg) (sum []byte, keep bool, err error) {
	start := s.now()
	f, fi, err := s.openServed(name) // as it is served: a name hidden since is not read
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	if fileETag(fi) != etag {
		return nil, false, errDigestFileChange
	}
	h := alg.new()
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	// A write in place keeps the inode, so look again: the change time
	// has moved if the bytes just hashed may not be the ones etag names.
	if fi, err := f.Stat(); err != nil || fileETag(fi) != etag {
		return nil, false, errDigestFileChange
	}
	return h.Sum(nil), !changedSince(fi, start.Add(-racyWindow)), nil
}

// changedSince reports whether the file fi describes last changed at or
// after t, by its status change time or, where there is none, its
// modification time.
func changedSince(fi fs.FileInfo, t time.Time) bool {
	ns := changeTime(fi)
	if ns == 0 {
		ns = fi.ModTime().UnixNano()
	}
	return ns >= t.UnixNano()
}

// digestKey names one digest: a file version and an algorithm.
type digestKey struct {
	path, etag, alg string
}

// maxDigestFlights bounds the files hashed at once. A digest is optional,
// so a request that would start one more pass gets none, rather than have
// a client asking for digests of many big files (a HEAD is enough) make the
// server read them all at the same time.
const maxDigestFlights = 8

// errDigestBusy reports that maxDigestFlights files are being hashed.
var errDigestBusy = errors.New("server: too many files being hashed at once")

// digestCache holds recent digests, at most max of them, dropping the least
// recently used. A digest not yet known is computed once, however many
// requests ask for it meanwhile: a segmented client asks on every range.
type digestCache struct {
	ctx    context.Context // bounds the computations; cancelled by Server.Close
	max    int
	hashes atomic.Int64 // computations started, for tests

	mu      sync.Mutex
	lru     *list.List // of *digestEntry, most recently used first
	entries map[digestKey]*list.Element
	flights map[digestKey]*digestFlight
}

type digestEntry struct {
	key digestKey
	sum []byte
}

// digestFlight is a computation in progress; done is closed once sum and
// err are set.
type digestFlight struct {
	done chan struct{}
	sum  []byte
	err  error
}

func newDigestCache(ctx context.Context, max int) *digestCache {
	return &digestCache{
		ctx:     ctx,
		max:     max,
		lru:     list.New(),
		entries: map[digestKey]*list.Element{},
		flights: map[digestKey]*digestFlight{},
	}
}

// digestCompute computes a digest; keep says whether it may be cached.
type digestCompute func(context.Context) (sum []byte, keep bool, err error)

// get returns the digest for key, computing it with compute if it is neither
// cached nor being computed. compute runs on its own goroutine under the
// cache's context, so a caller that gives up (ctx done) leaves it to finish
// for the others and for the next request; errors, and sums compute says
// not to keep, are not cached. With maxDigestFlights computations running,
// a key not among them gets errDigestBusy.
func (c *digestCache) get(ctx context.Context, key digestKey, compute digestCompute) ([]byte, error) {
	c.mu.Lock()
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		sum := el.Value.(*digestEntry).sum
		c.mu.Unlock()
		return sum, nil
	}
	fl, ok := c.flights[key]
	if !ok {
		if len(c.flights) >= maxDigestFlights {
			c.mu.Unlock()
			return nil, errDigestBusy
		}
		fl = &digestFlight{done: make(chan struct{})}
		c.flights[key] = fl
		c.hashes.Add(1)
		go c.run(key, fl, compute)
	}
	c.mu.Unlock()

	select {
	case <-fl.done:
		return fl.sum, fl.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (c *digestCache) run(key digestKey, fl *digestFlight, compute digestCompute) {
	sum, keep, err := compute(c.ctx)

	c.mu.Lock()
	delete(c.flights, key)
	if err == nil && keep {
		c.entries[key] = c.lru.PushFront(&digestEntry{key, sum})
		for c.lru.Len() > c.max {
			old := c.lru.Remove(c.lru.Back()).(*digestEntry)
			delete(c.entries, old.key)
		}
	}
	fl.sum, fl.err = sum, err
	c.mu.Unlock()
	close(fl.done)
}
