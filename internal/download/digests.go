package download

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"hash"
	"io"
	"os"
)

// digests hashes the result while it is written, in every algorithm the job
// needs. Bytes kept from an earlier run are read back from the .part file
// before the first new byte, so the digest always covers the whole file.
type digests struct {
	algs   []string
	hashes []hash.Hash
	upto   int64 // bytes of the file fed to the hashes
}

func newDigests(j *Job) digests {
	var d digests
	if j.Hash {
		d.want("sha-256")
	}
	if j.Checksum != nil {
		d.want(j.Checksum.Algorithm)
	}
	d.reset()
	return d
}

// want adds alg to the digests computed. A new one starts the hashing over,
// from the first byte of the file.
func (d *digests) want(alg string) {
	for _, a := range d.algs {
		if a == alg {
			return
		}
	}
	d.algs = append(d.algs, alg)
	d.reset()
}

func (d *digests) reset() {
	d.hashes = d.hashes[:0]
	for _, alg := range d.algs {
		if alg == "sha-512" {
			d.hashes = append(d.hashes, sha512.New())
		} else {
			d.hashes = append(d.hashes, sha256.New())
		}
	}
	d.upto = 0
}

// add feeds p, which is about to sit at off in f.
func (d *digests) add(f *os.File, off int64, p []byte) error {
	if len(d.hashes) == 0 {
		return nil
	}
	if err := d.catchUp(f, off); err != nil {
		return err
	}
	for _, h := range d.hashes {
		h.Write(p)
	}
	d.upto += int64(len(p))
	return nil
}

// catchUp feeds the bytes of f in [upto, end) that the hashes have not seen.
func (d *digests) catchUp(f *os.File, end int64) error {
	if len(d.hashes) == 0 || d.upto >= end {
		return nil
	}
	ws := make([]io.Writer, len(d.hashes))
	for i, h := range d.hashes {
		ws[i] = h
	}
	n, err := io.Copy(io.MultiWriter(ws...), io.NewSectionReader(f, d.upto, end-d.upto))
	d.upto += n
	return err
}

// sum returns the hex digest for alg, or "" if it was not computed.
func (d *digests) sum(alg string) string {
	for i, a := range d.algs {
		if a == alg {
			return hex.EncodeToString(d.hashes[i].Sum(nil))
		}
	}
	return ""
}
