package hlsdownload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/ferryhq/ferry/hls"
	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/transfer"
)

// item is one file of the download: a media segment or an initialization
// section.
type item struct {
	t       *track
	seq     int64        // -1 for an initialization section
	seg     *hls.Segment // nil for an initialization section
	isMap   bool
	mapItem *item // the segment's initialization section
	url     string
	rng     *hls.ByteRange
	key     *keyRef
	name    string // in the track's directory

	mu      sync.Mutex
	claimed bool  // an initialization section is planned once
	done    bool  // on disk under name
	size    int64 // on disk
	err     error // given up on
}

// keyRef is how an item is decrypted.
type keyRef struct {
	url string
	iv  []byte
}

func (it *item) path() string { return filepath.Join(it.t.dir, it.name) }

// usable reports whether the item is on disk (segments given up on, gaps
// and dropped ones are not).
func (it *item) usable() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.done
}

// claim reports whether the caller is the first to plan the item.
func (it *item) claim() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	was := it.claimed
	it.claimed = true
	return !was
}

// adopt takes the item as done when an earlier run left it on disk.
func (it *item) adopt() bool {
	fi, err := os.Lstat(it.path()) // a link is no segment: it is fetched, and its commit refused
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	it.mu.Lock()
	it.done, it.size = true, fi.Size()
	it.mu.Unlock()
	it.t.r.j.Meter.Found(fi.Size())
	return true
}

// group is the items one request fetches: one resource, or adjacent byte
// ranges of one resource.
type group struct{ items []*item }

// extends reports whether it continues g's byte ranges, within the
// coalescing bounds.
func (g *group) extends(it *item) bool {
	last := g.items[len(g.items)-1]
	if last.isMap || it.rng == nil || last.rng == nil || it.url != last.url ||
		last.rng.Offset+last.rng.Length != it.rng.Offset || len(g.items) >= groupSegments {
		return false
	}
	var n int64
	for _, x := range g.items {
		n += x.rng.Length
	}
	return n+it.rng.Length <= groupBytes
}

// fetchGroup fetches g's items, retrying the rest after a failure. Items
// that cannot be fetched become holes; an initialization section that
// cannot is fatal. It returns only fatal errors.
func (r *run) fetchGroup(ctx context.Context, g *group) error {
	rt := r.j.Retrier()
	for {
		var pending []*item
		for _, it := range g.items {
			if !it.usable() {
				pending = append(pending, it)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		committed, err := r.fetchItems(ctx, pending)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if _, ok := errors.AsType[*writeError](err); ok {
			return err
		}
		retryable := err
		if g.items[0].t.live() {
			retryable = segmentRetryable(err)
		}
		if _, ok := errors.AsType[*KeyError](err); ok {
			retryable = err // the key was fetched with its own retries: no use
		}
		// Only a committed item is progress: bytes of one cut short are
		// thrown away, and a segment that always breaks must end.
		if ferr := rt.Failed(ctx, retryable, committed); ferr != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if len(pending) > 1 {
				// One bad item must not take its neighbours with it:
				// each is tried on its own.
				for _, it := range pending {
					if !it.usable() {
						if err := r.fetchGroup(ctx, &group{items: []*item{it}}); err != nil {
							return err
						}
					}
				}
				return nil
			}
			for _, it := range pending {
				if it.usable() {
					continue
				}
				if it.isMap {
					return fmt.Errorf("hls: initialization section %s: %w", it.url, err)
				}
				it.mu.Lock()
				it.err = err
				it.mu.Unlock()
				r.segmentDone(it.t, it, false)
			}
			return nil
		}
	}
}

// segmentRetryable makes a live segment's 404 or 410 worth another try:
// CDNs answer so for a while for segments that are being published. A VOD
// playlist's segments are all published: their 404 is final.
func segmentRetryable(err error) error {
	if se, ok := errors.AsType[*transfer.StatusError](err); ok && (se.StatusCode == http.StatusNotFound || se.StatusCode == http.StatusGone) {
		return &transfer.Transient{Err: err}
	}
	return err
}

// fetchItems fetches items (all of one resource, adjacent ranges when more
// than one) in one request, committing each as soon as it is whole. It
// reports whether it committed any.
func (r *run) fetchItems(ctx context.Context, items []*item) (bool, error) {
	keys := make([][]byte, len(items))
	for i, it := range items {
		if it.key != nil {
			k, err := r.keys.get(ctx, it.key.url)
			if err != nil {
				return false, err
			}
			keys[i] = k
		}
	}
	var sp span
	if items[0].rng != nil {
		sp.off = items[0].rng.Offset
		for _, it := range items {
			sp.n += it.rng.Length
		}
	}
	i := 0
	var cur *output
	defer func() {
		if cur != nil {
			cur.abort()
		}
	}()
	open := func() error {
		var err error
		cur, err = openOutput(items[i], keys[i])
		return err
	}
	finish := func() error {
		it := items[i]
		size, err := cur.commit(it.path())
		cur = nil
		if err != nil {
			return err
		}
		it.mu.Lock()
		it.done, it.size = true, size
		it.mu.Unlock()
		if !it.isMap {
			r.segmentDone(it.t, it, true)
		}
		i++
		return nil
	}
	_, _, err := r.fetch(ctx, items[0].url, sp, func(p []byte) error {
		for len(p) > 0 {
			if i == len(items) {
				return transfer.ErrBadContentRange // more than the items hold
			}
			if cur == nil {
				if err := open(); err != nil {
					return err
				}
			}
			k := len(p)
			if rng := items[i].rng; rng != nil {
				k = int(min(int64(k), rng.Length-cur.in))
			}
			if err := cur.write(p[:k]); err != nil {
				return err
			}
			p = p[k:]
			if rng := items[i].rng; rng != nil && cur.in == rng.Length {
				if err := finish(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return i > 0, err
	}
	if i < len(items) { // a whole resource: it ends with the body
		if cur == nil {
			return false, &transfer.Transient{Err: errors.New("empty segment")}
		}
		if err := finish(); err != nil {
			return i > 0, err
		}
	}
	return true, nil
}

// output is an item being written: a hidden part file, through the
// decrypter when the item is encrypted.
type output struct {
	f   *os.File
	buf *bufio.Writer // a write per network read would cost a system call each
	dec *decrypter
	in  int64 // bytes received
}

func openOutput(it *item, key []byte) (*output, error) {
	f, err := atomicfile.CreateTemp(it.t.dir, "."+it.name+".part", atomicfile.Public)
	if err != nil {
		return nil, &writeError{err}
	}
	o := &output{f: f, buf: bufio.NewWriterSize(f, 256<<10)}
	if key != nil {
		if o.dec, err = newDecrypter(o.buf, key, it.key.iv); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, &KeyError{URL: it.key.url, Err: err}
		}
	}
	return o, nil
}

func (o *output) write(p []byte) error {
	o.in += int64(len(p))
	var err error
	if o.dec != nil {
		_, err = o.dec.Write(p)
	} else {
		_, err = o.buf.Write(p)
	}
	if err != nil {
		return &writeError{err}
	}
	return nil
}

// commit completes the item and puts it under its name: synced first, so
// a name never holds a torn file. It returns the stored size.
func (o *output) commit(final string) (int64, error) {
	if o.dec != nil {
		if err := o.dec.Close(); err != nil {
			o.abort()
			if errors.Is(err, ErrBadPadding) {
				return 0, err
			}
			return 0, &writeError{err}
		}
	}
	err := o.buf.Flush()
	var fi os.FileInfo
	if err == nil {
		fi, err = o.f.Stat()
	}
	if err == nil {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = atomicfile.Rename(o.f.Name(), final)
	}
	if err != nil {
		os.Remove(o.f.Name())
		return 0, &writeError{err}
	}
	return fi.Size(), nil
}

func (o *output) abort() {
	o.f.Close()
	os.Remove(o.f.Name())
}

// writeError is a local disk failure: fatal, never retried.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }
