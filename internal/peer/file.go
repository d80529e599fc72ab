package peer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
)

// MakeFile writes size pseudo-random bytes to path and returns their hex
// sha-256. The bytes are ChaCha8's stream for a key whose first 8 bytes
// are seed (big-endian) and the rest zero: the same seed always gives the
// same file, so a failure can be reproduced. It streams through one 1 MiB
// buffer, whatever the size.
func MakeFile(path string, size int64, seed uint64) (string, error) {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	src := rand.NewChaCha8(key)

	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	sha := sha256.New()
	w := io.MultiWriter(f, sha)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(int64(len(buf)), left)
		src.Read(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			f.Close()
			return "", err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(sha.Sum(nil)), nil
}

// EnsureFile is MakeFile for a file kept between runs: when path already
// holds size bytes it only hashes them (which also brings them into the
// page cache) and returns made false. Otherwise it makes the file under
// path+".tmp", syncs it and renames it to path, so that an interrupted run
// leaves no short file behind.
func EnsureFile(path string, size int64, seed uint64) (sum string, made bool, err error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
		sum, err := FileSHA256(path)
		return sum, false, err
	}
	tmp := path + ".tmp"
	sum, err = MakeFile(tmp, size, seed)
	if err == nil {
		err = syncFile(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return "", false, err
	}
	return sum, true, nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// FileSHA256 returns the hex sha-256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
