package hlsdownload

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"testing"
)

func encryptPKCS7(key, iv, plain []byte) []byte {
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	b := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(key)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(b, b)
	return b
}

// Decryption is right whatever the lengths (a whole last block of
// padding included) and however the ciphertext arrives in pieces.
func TestDecrypter(t *testing.T) {
	key, iv := []byte("0123456789abcdef"), seqIV(1234)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 1000, 188 * 7} {
		plain := bytes.Repeat([]byte("ferry!"), n/6+1)[:n]
		enc := encryptPKCS7(key, iv, plain)
		for _, piece := range []int{1, 5, 16, 17, 4096} {
			var out bytes.Buffer
			d, err := newDecrypter(&out, key, iv)
			if err != nil {
				t.Fatal(err)
			}
			for p := enc; len(p) > 0; p = p[min(piece, len(p)):] {
				d.Write(p[:min(piece, len(p))])
			}
			if err := d.Close(); err != nil || !bytes.Equal(out.Bytes(), plain) {
				t.Fatalf("n=%d pieces of %d: %v, got %d bytes", n, piece, err, out.Len())
			}
		}
	}
}

func TestDecrypterBadInput(t *testing.T) {
	key, iv := []byte("0123456789abcdef"), seqIV(1)
	enc := encryptPKCS7(key, iv, []byte("a segment of some length"))
	for name, c := range map[string]struct {
		key, data []byte
	}{
		"wrong key":         {[]byte("fedcba9876543210"), enc},
		"not whole blocks":  {key, enc[:len(enc)-3]},
		"empty":             {key, nil},
		"truncated a block": {key, enc[:len(enc)-16]},
	} {
		d, _ := newDecrypter(&bytes.Buffer{}, c.key, iv)
		d.Write(c.data)
		if err := d.Close(); !errors.Is(err, ErrBadPadding) {
			t.Errorf("%s: Close = %v, want ErrBadPadding", name, err)
		}
	}
}

func TestSeqIV(t *testing.T) {
	want := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x02}
	if got := seqIV(0x0102); !bytes.Equal(got, want) {
		t.Errorf("seqIV = %x, want %x", got, want)
	}
}
