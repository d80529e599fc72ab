package store

import (
	"context"
	"io"
	"time"
)

// Pieces says how [Append] cuts one long append into pieces, each made
// durable before the next begins. With neither bound, the append is one
// piece (which the store may still checkpoint; see the package doc).
type Pieces struct {
	// Bytes bounds a piece in bytes; 0: no bound.
	Bytes int64
	// Every bounds a piece in time: a piece ends with the first read
	// that returns after Every has passed since the piece began; 0: no
	// bound.
	Every time.Duration
}

// Append appends src to up from offset, one WriteChunk a piece. After
// each piece but the last, durable is called (when not nil) with the
// upload's offset, which is durable then. It returns how many bytes it
// appended in all, and the first error of a piece.
func Append(ctx context.Context, up Upload, offset int64, src io.Reader, p Pieces, durable func(offset int64)) (int64, error) {
	var total int64
	for {
		pc := &piece{r: src, limit: p.Bytes}
		if p.Every > 0 {
			pc.until = time.Now().Add(p.Every)
		}
		n, err := up.WriteChunk(ctx, offset+total, pc)
		total += n
		if err != nil || pc.ended {
			return total, err
		}
		if durable != nil {
			durable(offset + total)
		}
	}
}

// piece is src as one piece of an Append reads it.
type piece struct {
	r     io.Reader
	limit int64     // bytes the piece may read; 0: no bound
	read  int64     // bytes the piece has read
	until time.Time // the piece ends with the first read after it
	ended bool      // src is at its end
}

func (p *piece) Read(b []byte) (int, error) {
	switch {
	case p.ended:
		return 0, io.EOF
	case p.limit > 0 && p.read >= p.limit:
		return 0, io.EOF // the piece is full
	case p.read > 0 && !p.until.IsZero() && !time.Now().Before(p.until):
		return 0, io.EOF // the piece's time is up
	}
	if p.limit > 0 && int64(len(b)) > p.limit-p.read {
		b = b[:p.limit-p.read]
	}
	n, err := p.r.Read(b)
	p.read += int64(n)
	if err == io.EOF {
		p.ended = true
	}
	return n, err
}
