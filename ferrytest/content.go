package ferrytest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"sync"
)

// content is a deterministic pseudo-random byte stream of a fixed size. Byte
// offset o lies in the 8-byte little-endian word o/8, and word i is the
// splitmix64 finalizer applied to key + (i+1)*golden, where key mixes the
// server's seed with the version. Every word is independent of the others, so
// ReadAt at any offset costs only the bytes it returns and nothing is kept in
// memory however large the resource is.
type content struct {
	key  uint64
	size int64
}

const golden = 0x9e3779b97f4a7c15

func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func contentKey(seed uint64, version int) uint64 {
	return mix64(mix64(seed+golden) ^ uint64(version)*0xd1b54a32d192ed03)
}

var errNegativeOffset = errors.New("ferrytest: negative offset")

// ReadAt implements io.ReaderAt.
func (c content) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errNegativeOffset
	}
	if off >= c.size {
		return 0, io.EOF
	}
	var err error
	if rest := c.size - off; int64(len(p)) > rest {
		p = p[:rest]
		err = io.EOF
	}
	c.fill(p, off)
	return len(p), err
}

// fill writes the bytes at [off, off+len(p)) into p.
func (c content) fill(p []byte, off int64) {
	i := uint64(off) / 8
	var w [8]byte
	if r := off % 8; r != 0 {
		binary.LittleEndian.PutUint64(w[:], c.word(i))
		n := copy(p, w[r:])
		p = p[n:]
		i++
	}
	z := c.key + (i+1)*golden
	for len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, mix64(z))
		p = p[8:]
		z += golden
	}
	if len(p) > 0 {
		binary.LittleEndian.PutUint64(w[:], mix64(z))
		copy(p, w[:])
	}
}

func (c content) word(i uint64) uint64 { return mix64(c.key + (i+1)*golden) }

// bufPool holds the buffers a response body is generated into.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// sha256Hex hashes the whole content.
func (c content) sha256Hex() string {
	h := sha256.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for off := int64(0); off < c.size; {
		n := int64(len(buf))
		if rest := c.size - off; rest < n {
			n = rest
		}
		c.fill(buf[:n], off)
		h.Write(buf[:n])
		off += n
	}
	return hex.EncodeToString(h.Sum(nil))
}
