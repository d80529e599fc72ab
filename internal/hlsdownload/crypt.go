package hlsdownload

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"io"
)

// ErrBadPadding reports an AES-128 segment that does not decrypt to valid
// PKCS#7 padding: the wrong key or IV, or a damaged segment.
var ErrBadPadding = errors.New("hls: segment does not decrypt (bad padding: wrong key or IV?)")

// seqIV is the IV of a segment whose EXT-X-KEY has none: its media sequence
// number as a 128-bit big-endian integer (RFC 8216 §5.2).
func seqIV(seq int64) []byte {
	iv := make([]byte, aes.BlockSize)
	binary.BigEndian.PutUint64(iv[8:], uint64(seq))
	return iv
}

// decrypter writes the AES-128-CBC decryption of what it is given to w. The
// last block is held back until Close, which removes the PKCS#7 padding.
type decrypter struct {
	w       io.Writer
	mode    cipher.BlockMode
	pending []byte
}

func newDecrypter(w io.Writer, key, iv []byte) (*decrypter, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &decrypter{w: w, mode: cipher.NewCBCDecrypter(block, iv)}, nil
}

func (d *decrypter) Write(p []byte) (int, error) {
	d.pending = append(d.pending, p...)
	// Keep at least one whole block back: it may be the last.
	n := len(d.pending) - aes.BlockSize
	n -= n % aes.BlockSize
	if n <= 0 {
		return len(p), nil
	}
	d.mode.CryptBlocks(d.pending[:n], d.pending[:n])
	if _, err := d.w.Write(d.pending[:n]); err != nil {
		return 0, err
	}
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return len(p), nil
}

// Close decrypts the last block and writes it without its padding.
func (d *decrypter) Close() error {
	if len(d.pending) != aes.BlockSize {
		return ErrBadPadding // not a whole number of blocks
	}
	last := d.pending
	d.mode.CryptBlocks(last, last)
	pad := int(last[len(last)-1])
	if pad == 0 || pad > aes.BlockSize {
		return ErrBadPadding
	}
	for _, b := range last[len(last)-pad:] {
		if int(b) != pad {
			return ErrBadPadding
		}
	}
	_, err := d.w.Write(last[:len(last)-pad])
	return err
}
