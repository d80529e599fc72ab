package upload

import (
	"sync"
	"testing"
)

// However slow the link and big the file, a parallel upload is cut into
// at most maxSegments segments, so it never names more partial uploads
// than a server takes in one final upload.
func TestSegmentsBounded(t *testing.T) {
	for _, size := range []int64{10 << 20, 3 << 30, 50 << 30} {
		p := &parallelUpload{r: &run{j: &Job{}, st: State{Size: size}}, conns: 8}
		p.cond = sync.NewCond(&p.mu)
		p.speed.bytesPerSec = 100 << 10 // 100 KB/s a connection: minimal appends
		n := 0
		for p.take() >= 0 {
			n++
			if n == 1 {
				p.share = (size - p.r.st.Next + 7) / 8
			}
			p.busy = 0
		}
		if n > maxSegments || p.r.st.Next != size {
			t.Errorf("a %d-byte upload: %d segments covering %d bytes; want at most %d covering all", size, n, p.r.st.Next, maxSegments)
		}
	}
}
