package store_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ferryhq/ferry/server/store"
	"github.com/ferryhq/ferry/server/store/memstore"
)

// Append cuts an append into pieces by bytes or by time, tells each
// durable offset but the last, and keeps what a failing source gave.
func TestAppend(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10) // 100 bytes
	for _, c := range []struct {
		name    string
		src     func() io.Reader
		pieces  store.Pieces
		durable []int64
		n       int64
		err     error
	}{
		{"one piece", func() io.Reader { return bytes.NewReader(data) }, store.Pieces{}, nil, 100, nil},
		{"by bytes", func() io.Reader { return bytes.NewReader(data) }, store.Pieces{Bytes: 30}, []int64{30, 60, 90}, 100, nil},
		// A piece full at the source's end: the next piece finds the end.
		{"by bytes, exact", func() io.Reader { return bytes.NewReader(data) }, store.Pieces{Bytes: 50}, []int64{50, 100}, 100, nil},
		// Time up at once: a piece is the first read after it begins.
		{"by time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:4])) }, store.Pieces{Every: time.Nanosecond}, []int64{1, 2, 3, 4}, 4, nil},
		{"by time, not up", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }, store.Pieces{Every: time.Hour}, nil, 100, nil},
		{"both", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:6])) }, store.Pieces{Bytes: 4, Every: time.Hour}, []int64{4}, 6, nil},
		{"failing source", func() io.Reader {
			return io.MultiReader(bytes.NewReader(data[:45]), iotest.ErrReader(errCut))
		}, store.Pieces{Bytes: 20}, []int64{20, 40}, 45, errCut},
	} {
		t.Run(c.name, func(t *testing.T) {
			up, err := memstore.New().NewUpload(t.Context(), store.Info{ID: store.NewID(), SizeIsDeferred: true})
			if err != nil {
				t.Fatal(err)
			}
			var durable []int64
			n, err := store.Append(t.Context(), up, 0, c.src(), c.pieces, func(off int64) { durable = append(durable, off) })
			if n != c.n || !errors.Is(err, c.err) {
				t.Errorf("Append: %d bytes, %v; want %d, %v", n, err, c.n, c.err)
			}
			if !slices.Equal(durable, c.durable) {
				t.Errorf("durable offsets %v, want %v", durable, c.durable)
			}
			info, err := up.GetInfo(t.Context())
			if err != nil || info.Offset != c.n {
				t.Errorf("the upload is at %d (%v), want %d", info.Offset, err, c.n)
			}
			r, err := up.GetReader(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got, _ := io.ReadAll(r); !bytes.Equal(got, data[:c.n]) {
				t.Errorf("stored %q, want %q", got, data[:c.n])
			}
		})
	}
}

var errCut = errors.New("connection cut")
