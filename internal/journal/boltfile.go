package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
)

// This file reads a bbolt file without bbolt, through bounds checks at
// every step: bbolt trusts its file and panics (or faults on its memory
// map) on a damaged one, while this reader only ever returns errors. Open
// walks a journal with it before bbolt is let near the file; Recover reads
// what it can of a damaged one with it. The format is bbolt's (boltRelease,
// go.etcd.io/bbolt/internal/common): pages of meta.pageSize bytes, each
// with a 16-byte header; two meta pages; branch and leaf pages of a B+
// tree per bucket; a freelist page.

const (
	pageHeaderSize = 16 // id u64, flags u16, count u16, overflow u32
	elementSize    = 16 // leaf: flags, pos, ksize, vsize u32; branch: pos, ksize u32, pgid u64
	bucketHeader   = 16 // root u64, sequence u64; an inline bucket's page follows when root is 0
	metaSize       = 64 // magic, version, pageSize, flags u32; root, seq, freelist, pgid, txid, checksum u64

	branchPage   = 0x01
	leafPage     = 0x02
	metaPage     = 0x04
	freelistPage = 0x10
	bucketEntry  = 0x01 // leaf element flag: the value is a bucket

	// boltRelease is the bbolt release whose format this file reads: a
	// test fails when go.mod requires another, until this file has been
	// checked against it (a layout read wrong would make Open set aside
	// every sound journal as damaged).
	boltRelease = "v1.4.3"

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)
)

// bbolt writes its numbers in the machine's byte order.
var ne = binary.NativeEndian

// boltMeta is a meta page's content.
type boltMeta struct {
	pageSize uint64
	root     uint64 // the root bucket's page
	freelist uint64
	pgid     uint64 // the high water mark: pages in use are below it
	txid     uint64
}

// boltFile is a bbolt file being read.
type boltFile struct {
	r    io.ReaderAt
	size int64
	meta boltMeta
}

// parseMeta reads the meta of a page starting at b; it fails as bbolt's
// Validate does (magic, version, checksum).
func parseMeta(b []byte) (boltMeta, error) {
	if len(b) < pageHeaderSize+metaSize {
		return boltMeta{}, errors.New("too short")
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	h := fnv.New64a()
	h.Write(m[:56])
	switch {
	case ne.Uint32(m[0:]) != boltMagic:
		return boltMeta{}, errors.New("not a bbolt meta page")
	case ne.Uint32(m[4:]) != boltVersion:
		return boltMeta{}, fmt.Errorf("bbolt format version %d", ne.Uint32(m[4:]))
	case ne.Uint64(m[56:]) != h.Sum64():
		return boltMeta{}, errors.New("meta checksum mismatch")
	}
	return boltMeta{pageSize: uint64(ne.Uint32(m[8:])), root: ne.Uint64(m[16:]), freelist: ne.Uint64(m[32:]),
		pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}, nil
}

// openBoltFile finds the meta page bbolt would use: of the two that are
// valid, the one with the later transaction.
func openBoltFile(r io.ReaderAt, size int64) (*boltFile, error) {
	if size < 2*1024 {
		return nil, fmt.Errorf("%d bytes: too short to hold a journal", size)
	}
	read := func(off int64) []byte {
		b := make([]byte, pageHeaderSize+metaSize)
		if n, _ := r.ReadAt(b, off); n < len(b) {
			return nil
		}
		return b
	}
	m0, err0 := parseMeta(read(0))
	// The second meta page is one page in: where, the first says, or
	// else (as bbolt does) wherever a valid one is found.
	var m1 boltMeta
	err1 := errors.New("not found")
	if err0 == nil {
		m1, err1 = parseMeta(read(int64(m0.pageSize)))
	} else {
		for i := 0; i <= 14 && int64(1024<<i) < size-1024; i++ {
			if m1, err1 = parseMeta(read(1024 << i)); err1 == nil {
				break
			}
		}
	}
	var m boltMeta
	switch {
	case err0 != nil && err1 != nil:
		return nil, fmt.Errorf("neither meta page is valid (%v; %v)", err0, err1)
	case err1 != nil || (err0 == nil && m0.txid >= m1.txid):
		m = m0
	default:
		m = m1
	}
	switch {
	case m.pageSize < 1024 || m.pageSize > 1<<20 || m.pageSize&(m.pageSize-1) != 0:
		return nil, fmt.Errorf("page size %d", m.pageSize)
	case m.pgid < 4 || m.root < 2 || m.root >= m.pgid || (m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid)):
		return nil, fmt.Errorf("meta points outside the file's %d pages (root %d, freelist %d)", m.pgid, m.root, m.freelist)
	}
	return &boltFile{r: r, size: size, meta: m}, nil
}

// pages is how many whole pages the file holds.
func (f *boltFile) pages() uint64 { return uint64(f.size) / f.meta.pageSize }

// truncated reports a file shorter than its meta says.
func (f *boltFile) truncated() error {
	if f.pages() < f.meta.pgid {
		return fmt.Errorf("truncated: %d bytes, %d pages of %d bytes in use", f.size, f.meta.pgid, f.meta.pageSize)
	}
	return nil
}

// page reads page id with its overflow pages, checking that it is one.
func (f *boltFile) page(id uint64) ([]byte, error) {
	if id < 2 || id >= f.meta.pgid || id >= f.pages() {
		return nil, fmt.Errorf("page %d: outside the file", id)
	}
	ps := f.meta.pageSize
	hdr := make([]byte, pageHeaderSize)
	if _, err := f.r.ReadAt(hdr, int64(id*ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	if got := ne.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d: its header says page %d", id, got)
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if id+overflow >= f.meta.pgid || id+overflow >= f.pages() {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the end", id, overflow)
	}
	b := make([]byte, (1+overflow)*ps)
	if _, err := f.r.ReadAt(b, int64(id*ps)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return b, nil
}

func pageFlags(p []byte) uint16 { return ne.Uint16(p[8:]) }
func pageCount(p []byte) int    { return int(ne.Uint16(p[10:])) }
func overflowOf(p []byte) int   { return int(ne.Uint32(p[12:])) }

// leafElem is one key/value of a leaf page.
type leafElem struct {
	flags      uint32
	key, value []byte
}

// span returns p[off+pos : off+pos+n] if it lies within p.
func span(p []byte, off int, pos uint32, n uint64) ([]byte, bool) {
	start := uint64(off) + uint64(pos)
	end := start + n
	if end > uint64(len(p)) {
		return nil, false
	}
	return p[start:end], true
}

// leafElems reads a leaf page (p starts at its header), checking that
// every element lies within it and the keys are in order. With salvage,
// it returns the elements that lie within the page, with the first
// problem.
func leafElems(p []byte, salvage bool) ([]leafElem, error) {
	if len(p) < pageHeaderSize || pageFlags(p) != leafPage {
		return nil, errors.New("not a leaf page")
	}
	n := pageCount(p)
	if pageHeaderSize+n*elementSize > len(p) {
		if !salvage {
			return nil, fmt.Errorf("%d elements do not fit", n)
		}
		n = (len(p) - pageHeaderSize) / elementSize
	}
	var out []leafElem
	var first error
	for i := range n {
		off := pageHeaderSize + i*elementSize
		e := p[off : off+elementSize]
		pos, ks, vs := ne.Uint32(e[4:]), ne.Uint32(e[8:]), ne.Uint32(e[12:])
		kv, ok := span(p, off, pos, uint64(ks)+uint64(vs))
		err := error(nil)
		switch {
		case !ok:
			err = fmt.Errorf("element %d lies outside the page", i)
		case len(out) > 0 && bytes.Compare(out[len(out)-1].key, kv[:ks]) >= 0:
			err = fmt.Errorf("element %d: keys out of order", i)
		}
		if err != nil && !salvage {
			return nil, err
		}
		if first == nil {
			first = err
		}
		if ok {
			out = append(out, leafElem{flags: ne.Uint32(e), key: kv[:ks], value: kv[ks:]})
		}
	}
	return out, first
}

// branchElem is one child of a branch page.
type branchElem struct {
	key  []byte
	page uint64
}

func branchElems(p []byte) ([]branchElem, error) {
	n := pageCount(p)
	if n == 0 || pageHeaderSize+n*elementSize > len(p) {
		return nil, fmt.Errorf("%d children do not fit", n)
	}
	out := make([]branchElem, n)
	for i := range out {
		off := pageHeaderSize + i*elementSize
		e := p[off : off+elementSize]
		key, ok := span(p, off, ne.Uint32(e), uint64(ne.Uint32(e[4:])))
		if !ok {
			return nil, fmt.Errorf("child %d: key outside the page", i)
		}
		out[i] = branchElem{key: key, page: ne.Uint64(e[8:])}
		if i > 0 && bytes.Compare(out[i-1].key, key) >= 0 {
			return nil, fmt.Errorf("child %d: keys out of order", i)
		}
	}
	return out, nil
}

// freelist reads the freelist page's page IDs.
func (f *boltFile) freelist() ([]uint64, []uint64, error) {
	p, err := f.page(f.meta.freelist)
	if err != nil {
		return nil, nil, err
	}
	if pageFlags(p) != freelistPage {
		return nil, nil, fmt.Errorf("page %d: not the freelist", f.meta.freelist)
	}
	idx, n := 0, uint64(pageCount(p))
	if n == 0xFFFF { // the count overflowed into the first element
		if len(p) < pageHeaderSize+8 {
			return nil, nil, errors.New("freelist: no count")
		}
		idx, n = 1, ne.Uint64(p[pageHeaderSize:])
	}
	if n > uint64(len(p)-pageHeaderSize)/8-uint64(idx) {
		return nil, nil, fmt.Errorf("freelist: %d IDs do not fit", n)
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = ne.Uint64(p[pageHeaderSize+8*(idx+i):])
	}
	own := []uint64{f.meta.freelist}
	for i := 1; i <= overflowOf(p); i++ {
		own = append(own, f.meta.freelist+uint64(i))
	}
	return ids, own, nil
}

// visitor is told what a walk of the file finds.
type visitor interface {
	// value is a key/value of the bucket at path (names, outermost first).
	value(path []string, key, value []byte)
	// bucket is a bucket named name in the bucket at path, with its
	// sequence.
	bucket(path []string, name []byte, seq uint64)
	// problem is something unreadable at path; the walk goes on past it
	// (a strict visitor stops at the first by returning false).
	problem(path []string, err error) bool
}

// walker walks the tree of buckets from the meta page.
type walker struct {
	f       *boltFile
	v       visitor
	seen    map[uint64]bool // pages in use, found once each
	stop    bool            // the visitor wants no more
	salvage bool            // read what can be read past problems
}

func (w *walker) fail(path []string, err error) {
	if !w.v.problem(path, err) {
		w.stop = true
	}
}

// walk visits every bucket and value reachable from the root.
func (w *walker) walk() {
	w.subtree(nil, w.f.meta.root, nil, nil)
}

// subtree walks the B+ tree page id of the bucket at path. Keys must lie
// in [lo, hi) (nil: unbounded), as the branch above routes them: a lookup
// of any key in it finds it. It returns the least and greatest keys
// found.
func (w *walker) subtree(path []string, id uint64, lo, hi []byte) (first, last []byte) {
	if w.stop {
		return nil, nil
	}
	p, err := w.f.page(id)
	if err != nil {
		w.fail(path, err)
		return nil, nil
	}
	for i := 0; i <= overflowOf(p); i++ {
		if w.seen[id+uint64(i)] {
			w.fail(path, fmt.Errorf("page %d is used twice", id+uint64(i)))
			return nil, nil
		}
		w.seen[id+uint64(i)] = true
	}
	switch pageFlags(p) {
	case branchPage:
		kids, err := branchElems(p)
		if err != nil {
			w.fail(path, fmt.Errorf("page %d: %w", id, err))
			return nil, nil
		}
		for i, k := range kids {
			klo, khi := k.key, hi
			if i == 0 {
				klo = lo // keys below the first branch key go to the first child
			}
			if i+1 < len(kids) {
				khi = kids[i+1].key
			}
			f, l := w.subtree(path, k.page, klo, khi)
			if first == nil {
				first = f
			}
			if l != nil {
				last = l
			}
		}
		return first, last
	case leafPage:
		return w.leaf(path, p, id, lo, hi)
	default:
		w.fail(path, fmt.Errorf("page %d: not a branch or leaf page (flags %#x)", id, pageFlags(p)))
		return nil, nil
	}
}

// leaf visits the elements of a leaf page (id 0: inline in a bucket). A
// salvaging walk visits what it can read of a page that has problems.
func (w *walker) leaf(path []string, p []byte, id uint64, lo, hi []byte) (first, last []byte) {
	elems, err := leafElems(p, w.salvage)
	if err != nil {
		w.fail(path, fmt.Errorf("page %d: %w", id, err))
		if !w.salvage {
			return nil, nil
		}
	}
	if n := len(elems); n > 0 {
		first, last = elems[0].key, elems[n-1].key
		if (lo != nil && bytes.Compare(first, lo) < 0) || (hi != nil && bytes.Compare(last, hi) >= 0) {
			w.fail(path, fmt.Errorf("page %d: keys outside the range its branch gives them", id))
			if !w.salvage {
				return nil, nil
			}
		}
	}
	for _, e := range elems {
		if w.stop {
			break
		}
		if e.flags&bucketEntry == 0 {
			w.v.value(path, e.key, e.value)
			continue
		}
		w.child(path, e)
	}
	return first, last
}

// child walks the bucket a leaf element holds.
func (w *walker) child(path []string, e leafElem) {
	sub := append(path[:len(path):len(path)], string(e.key))
	if len(e.value) < bucketHeader {
		w.fail(sub, errors.New("bucket header cut short"))
		return
	}
	root, seq := ne.Uint64(e.value), ne.Uint64(e.value[8:])
	w.v.bucket(path, e.key, seq)
	if root != 0 {
		w.subtree(sub, root, nil, nil)
		return
	}
	inline := e.value[bucketHeader:]
	// bbolt writes an inline page with id and overflow 0, and takes a
	// nonzero id for a page of the file to free when the bucket grows.
	if len(inline) < pageHeaderSize || pageFlags(inline) != leafPage || ne.Uint64(inline) != 0 || overflowOf(inline) != 0 {
		w.fail(sub, errors.New("inline bucket is not an inline leaf page"))
		return
	}
	w.leaf(sub, inline, 0, nil, nil)
}

// checkPages checks, after a walk, that every page below the high water
// mark is in use once or free, never both.
func (w *walker) checkPages() {
	if w.f.meta.freelist == noFreelist {
		return // bbolt finds the free pages by a walk of its own
	}
	free, own, err := w.f.freelist()
	if err != nil {
		w.fail(nil, err)
		return
	}
	for _, id := range own {
		if w.seen[id] {
			w.fail(nil, fmt.Errorf("freelist page %d is also in use", id))
			return
		}
		w.seen[id] = true
	}
	isFree := make(map[uint64]bool, len(free))
	for _, id := range free {
		switch {
		case id < 2 || id >= w.f.meta.pgid:
			w.fail(nil, fmt.Errorf("free page %d is outside the file", id))
			return
		case isFree[id]:
			w.fail(nil, fmt.Errorf("page %d is freed twice", id))
			return
		case w.seen[id]:
			w.fail(nil, fmt.Errorf("page %d is both free and in use", id))
			return
		}
		isFree[id] = true
	}
	for id := uint64(2); id < w.f.meta.pgid; id++ {
		if !w.seen[id] && !isFree[id] {
			w.fail(nil, fmt.Errorf("page %d is neither in use nor free", id))
			return
		}
	}
}
