package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

// testFile is the file every tool downloads.
type testFile struct {
	dir  string // directory the origin serves
	name string
	size int64
	sum  string // hex sha-256
}

func (f testFile) path() string { return filepath.Join(f.dir, f.name) }

// testFileSeed seeds the test file's bytes: every machine benchmarks the
// same file.
const testFileSeed = 0xfe77

// ensureTestFile returns a file of size random bytes in cacheDir, making it
// when it is not there yet. An existing file is hashed again, which also
// brings it into the page cache so that the first run reads from memory like
// the others.
func ensureTestFile(cacheDir string, size int64) (testFile, error) {
	f := testFile{dir: filepath.Join(cacheDir, "data"), name: fmt.Sprintf("random-%d.bin", size), size: size}
	if err := os.MkdirAll(f.dir, 0o755); err != nil {
		return f, err
	}
	start := time.Now()
	logf("preparing the test file in %s", f.dir)
	sum, made, err := peer.EnsureFile(f.path(), size, testFileSeed)
	if err != nil {
		return f, err
	}
	f.sum = sum
	verb := "reusing"
	if made {
		verb = "made"
	}
	logf("%s %s (%s of random bytes, sha256 %s) in %v", verb, f.path(), formatSize(size), sum[:16], time.Since(start).Round(time.Millisecond))
	return f, nil
}

// parseSize reads sizes such as 1GiB, 512MiB, 64M, 1G, 1048576.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
		{"B", 1},
	}
	for _, u := range units {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			mult = u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q (use e.g. 64MiB, 1GiB)", s)
	}
	return int64(n * float64(mult)), nil
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
