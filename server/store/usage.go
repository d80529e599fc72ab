package store

import (
	"context"
	"errors"
	"fmt"
)

// RecordBytes is what the record of one upload counts as in [Footprint]:
// about a filesystem block, which two small files cost a filestore.
const RecordBytes = 4096

// Footprint is the storage an upload counts as holding: its bytes
// (Offset), and a record of its description, [RecordBytes] plus its
// variable fields. It depends on info alone, so a count kept current as
// uploads change agrees with [MeasureUsage] run afresh, as after a
// restart.
func Footprint(info Info) int64 {
	n := RecordBytes + info.Offset + int64(len(info.Name)+len(info.ContentType)+len(info.ReprDigest)+33*len(info.PartialUploads))
	for k, v := range info.MetaData {
		n += int64(len(k) + len(v))
	}
	return n
}

// ErrNoUsage is returned by [MeasureUsage] for a store that cannot
// enumerate its uploads.
var ErrNoUsage = errors.New("store: the store cannot list its uploads, so their storage cannot be counted")

// MeasureUsage returns how many uploads s holds and the sum of their
// [Footprint]s, from its [Lister] and each upload's Info. An upload that
// disappears while it counts, or whose data is lost ([ErrLost]), is not
// counted.
func MeasureUsage(ctx context.Context, s Store) (uploads int, bytes int64, err error) {
	l, ok := s.(Lister)
	if !ok {
		return 0, 0, ErrNoUsage
	}
	ids, err := l.List(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("store: measuring usage: %w", err)
	}
	for _, id := range ids {
		u, err := s.GetUpload(ctx, id)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLost) {
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("store: measuring usage: %w", err)
		}
		info, err := u.GetInfo(ctx)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, 0, fmt.Errorf("store: measuring usage: %w", err)
		}
		uploads++
		bytes += Footprint(info)
	}
	return uploads, bytes, nil
}
