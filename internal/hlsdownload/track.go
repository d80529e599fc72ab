package hlsdownload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/hls"
	"github.com/ferryhq/ferry/internal/atomicfile"
)

// liveStartSegments is how far from a live playlist's end recording starts
// (RFC 8216 §6.3.3: not less than three target durations from the end).
const liveStartSegments = 3

// Coalescing bounds: adjacent byte ranges of one resource are fetched in
// one request of at most this many segments and bytes.
const (
	groupSegments = 8
	groupBytes    = 8 << 20
)

// maxMissed bounds the segments a live playlist may skip between two
// loads before it counts as a jump in numbering.
const maxMissed = 1000

// errDropped is the fate of live segments that left the playlist before
// they were fetched.
var errDropped = errors.New("removed from the live playlist before it could be fetched")

// track is one media playlist being downloaded into dir.
type track struct {
	r    *run
	name string // "" for a lone media playlist, else its directory
	dir  string
	url  *url.URL // where the playlist came from
	src  *hls.Media

	mu       sync.Mutex
	items    map[int64]*item  // segments by media sequence number
	maps     map[string]*item // initialization sections by source
	started  bool
	ended    error // why a live recording ended before its time, if it did
	last     int64 // the highest sequence number planned
	discSeq  int64 // the discontinuity sequence of the first planned segment
	firstSeq int64
}

func newTrack(r *run, name, dir string, base *url.URL, m *hls.Media) *track {
	return &track{r: r, name: name, dir: dir, url: base, src: m, items: map[int64]*item{}, maps: map[string]*item{}}
}

// playlistName is the local media playlist, relative to the output directory.
func (t *track) playlistName() string {
	if t.name == "" {
		return IndexName
	}
	return t.name + "/" + IndexName
}

func (t *track) live() bool { return !t.src.EndList && t.src.PlaylistType != "VOD" }

// produce plans the track's segments; a live track keeps reloading its
// playlist until it ends or the recording time is up.
func (t *track) produce(ctx context.Context) error {
	if err := os.MkdirAll(t.dir, 0o777); err != nil {
		return err
	}
	if t.dir != t.r.j.Dir {
		// A directory ferry makes for a rendition is never a link
		// someone planted to send the segments elsewhere.
		if fi, err := os.Lstat(t.dir); err != nil || !fi.IsDir() {
			return &atomicfile.UnsafeError{Path: t.dir, What: "is not a directory"}
		}
	}
	removeParts(t.dir)
	if !t.live() {
		t.r.known(len(t.src.Segments))
		return t.plan(t.src, 0)
	}
	t.r.known(-1)
	start := time.Now()
	var deadline time.Time
	if d := t.r.j.LiveDuration; d > 0 {
		deadline = start.Add(d)
	}
	m, loadedAt, prev, unchanged := t.src, start, []byte(nil), false
	if err := t.plan(m, max(0, len(m.Segments)-liveStartSegments)); err != nil {
		return err
	}
	for !m.EndList {
		// RFC 8216 §6.3.4: wait a target duration after a load that
		// brought something new, half of one after one that did not.
		wait := time.Duration(m.TargetDuration) * time.Second
		if wait <= 0 {
			wait = time.Second
		}
		if unchanged {
			wait /= 2
		}
		next := loadedAt.Add(wait)
		last := false
		if !deadline.IsZero() && !next.Before(deadline) {
			// One last load when the time is up takes what it brought.
			next, last = deadline, true
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return context.Cause(ctx)
		case <-t.r.j.StopLive:
			timer.Stop()
			return nil
		case <-timer.C:
		}
		loadedAt = time.Now()
		body, _, err := t.r.fetchSmall(ctx, t.url.String(), true, hls.MaxPlaylistSize)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			// The stream went away (many end so, without ENDLIST): the
			// recording ends with what it has.
			return t.endLive(&PlaylistError{URL: t.url.String(), Err: err})
		}
		nm, err := t.r.limits().ParseMedia(bytes.NewReader(body))
		if err != nil {
			return t.endLive(&PlaylistError{URL: t.url.String(), Err: err})
		}
		unchanged = bytes.Equal(body, prev)
		prev, m = body, nm
		if n := len(m.Segments); n > 0 && m.Seq(n-1) < t.planned() {
			return t.endLive(fmt.Errorf("hls: the live playlist's media sequence went back from %d to %d (the stream restarted)", t.planned(), m.Seq(n-1)))
		}
		if err := t.plan(m, 0); err != nil {
			return err
		}
		if t.full() {
			return t.endLive(fmt.Errorf("hls: the recording reached %d segments, the limit", t.r.limits().SegmentLimit()))
		}
		if last {
			return nil
		}
	}
	return nil
}

// full reports whether the track holds as many segments as a playlist may
// (Job.MaxSegments): a live recording ends there.
func (t *track) full() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fullLocked()
}

func (t *track) fullLocked() bool {
	n := t.r.limits().SegmentLimit()
	return n > 0 && len(t.items) >= n
}

// planned is the highest sequence number planned so far.
func (t *track) planned() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// endLive ends a live recording early, for why: what was recorded is kept
// and written; the reason is reported with the result.
func (t *track) endLive(why error) error {
	t.mu.Lock()
	t.ended = why
	t.mu.Unlock()
	return nil
}

// plan turns the playlist's segments from index from on that are new into
// requests, skipping those already on disk.
func (t *track) plan(m *hls.Media, from int) error {
	var fresh []*item
	t.mu.Lock()
	for i := from; i < len(m.Segments) && !t.fullLocked(); i++ {
		seq := m.Seq(i)
		if t.started && seq <= t.last {
			continue
		}
		if !t.started {
			t.started, t.firstSeq = true, seq
			t.discSeq = m.DiscontinuitySequence
			for _, s := range m.Segments[:i] {
				if s.Discontinuity {
					t.discSeq++
				}
			}
		} else if seq-t.last-1 > maxMissed {
			// A jump, not a few segments missed (an encoder restarted
			// with new numbers): one hole stands for the gap.
			it := &item{t: t, seq: t.last + 1, err: fmt.Errorf("the live playlist jumped from segment %d to %d", t.last, seq)}
			t.items[it.seq] = it
			fresh = append(fresh, it)
		} else {
			// Segments that came and went between two loads.
			for missed := t.last + 1; missed < seq; missed++ {
				it := &item{t: t, seq: missed, err: errDropped}
				t.items[missed] = it
				fresh = append(fresh, it)
			}
		}
		t.last = seq
		it, err := t.newItem(m, i)
		if err != nil {
			t.mu.Unlock()
			return err
		}
		t.items[seq] = it
		fresh = append(fresh, it)
	}
	t.mu.Unlock()

	var g *group
	flush := func() {
		if g != nil {
			t.r.queue.push(g)
			g = nil
		}
	}
	for _, it := range fresh {
		if it.err != nil || it.seg.Gap {
			t.r.segmentDone(t, it, false) // nothing to fetch
			continue
		}
		if it.mapItem != nil && it.mapItem.claim() {
			flush()
			if !it.mapItem.adopt() {
				t.r.queue.push(&group{items: []*item{it.mapItem}})
			}
		}
		if it.adopt() {
			t.r.segmentDone(t, it, false)
			continue
		}
		if g != nil && g.extends(it) {
			g.items = append(g.items, it)
			continue
		}
		flush()
		g = &group{items: []*item{it}}
	}
	flush()
	return nil
}

// newItem describes segment i of m: where it comes from, how it is
// decrypted, and its local name.
func (t *track) newItem(m *hls.Media, i int) (*item, error) {
	seg := &m.Segments[i]
	if m != t.src {
		s := *seg // a copy: an item must not keep a whole reloaded playlist alive
		seg = &s
	}
	seq := m.Seq(i)
	if seg.ByteRange != nil && seg.ByteRange.Length <= 0 {
		return nil, &PlaylistError{URL: t.url.String(), Err: fmt.Errorf("segment %d: an empty byte range", seq)}
	}
	it := &item{t: t, seq: seq, seg: seg, rng: seg.ByteRange}
	var err error
	if it.url, err = resolve(t.url, seg.URI); err != nil {
		return nil, &PlaylistError{URL: t.url.String(), Err: err}
	}
	if it.key, err = t.keyRef(seg.Key, seqIV(seq)); err != nil {
		return nil, err
	}
	ext := mediaExt(it.url, ".ts")
	if seg.Map != nil {
		ext = mediaExt(it.url, ".m4s")
		if it.mapItem, err = t.mapItem(seg.Map); err != nil {
			return nil, err
		}
	}
	it.name = fmt.Sprintf("%06d-%s%s", seq, sourceHash(it.url, it.rng, it.key), ext)
	return it, nil
}

// keyRef is how a segment under k is decrypted; nil when it is not
// encrypted. Only AES-128 with an identity key can be stored playably.
func (t *track) keyRef(k *hls.Key, defaultIV []byte) (*keyRef, error) {
	if k == nil || k.Method == "NONE" {
		return nil, nil
	}
	if k.Method != "AES-128" || (k.KeyFormat != "" && k.KeyFormat != "identity") {
		return nil, fmt.Errorf("%w: encryption METHOD=%s KEYFORMAT=%q (only AES-128 with identity keys is decrypted)", ErrUnsupported, k.Method, k.KeyFormat)
	}
	target, err := resolve(t.url, k.URI)
	if err != nil {
		return nil, &KeyError{URL: k.URI, Err: err}
	}
	iv := k.IV
	if iv == nil {
		iv = defaultIV
	}
	return &keyRef{url: target, iv: iv}, nil
}

// mapItem returns the item of an initialization section, one per source.
func (t *track) mapItem(mp *hls.Map) (*item, error) {
	target, err := resolve(t.url, mp.URI)
	if err != nil {
		return nil, &PlaylistError{URL: t.url.String(), Err: err}
	}
	var key *keyRef
	if mp.Key != nil && mp.Key.Method != "NONE" {
		if mp.Key.IV == nil {
			return nil, &PlaylistError{URL: t.url.String(), Err: errors.New("an encrypted EXT-X-MAP without an IV")}
		}
		if key, err = t.keyRef(mp.Key, nil); err != nil {
			return nil, err
		}
	}
	if mp.ByteRange != nil && mp.ByteRange.Length <= 0 {
		return nil, &PlaylistError{URL: t.url.String(), Err: errors.New("an EXT-X-MAP with an empty byte range")}
	}
	id := sourceHash(target, mp.ByteRange, key)
	if it := t.maps[id]; it != nil {
		return it, nil
	}
	it := &item{t: t, seq: -1, isMap: true, url: target, rng: mp.ByteRange, key: key,
		name: "init-" + id + mediaExt(target, ".mp4")}
	t.maps[id] = it
	return it, nil
}

// sourceHash names what a local file holds: the resource, the range and
// the decryption.
func sourceHash(u string, rng *hls.ByteRange, key *keyRef) string {
	h := sha256.New()
	io.WriteString(h, stableURL(u))
	if rng != nil {
		fmt.Fprintf(h, "\x00%d@%d", rng.Length, rng.Offset)
	}
	if key != nil {
		fmt.Fprintf(h, "\x00%s\x00%x", stableURL(key.url), key.iv)
	}
	return hex.EncodeToString(h.Sum(nil))[:8]
}

// stableURL is u without its query: CDNs sign segment URLs with tokens
// that change between loads, and the sequence number in the name already
// tells segments apart.
func stableURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		p.RawQuery, p.Fragment = "", ""
		return p.String()
	}
	return u
}

// mediaExt is the extension of u's path when players know it as media
// (ffmpeg's HLS reader refuses others), else def.
func mediaExt(u, def string) string {
	p, err := url.Parse(u)
	if err != nil {
		return def
	}
	switch ext := strings.ToLower(path.Ext(p.Path)); ext {
	case ".ts", ".m4s", ".mp4", ".m4a", ".m4v", ".aac", ".ac3", ".ec3", ".mp3", ".vtt", ".webvtt", ".cmfv", ".cmfa":
		return ext
	}
	return def
}

// removeParts deletes what an interrupted run left half-written.
func removeParts(dir string) {
	for _, pattern := range []string{".*.part", ".*.part[0-9]*", ".*.tmp*"} {
		parts, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, p := range parts {
			os.Remove(p)
		}
	}
}

// sorted returns the planned segments in order.
func (t *track) sorted() []*item {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*item, 0, len(t.items))
	for _, it := range t.items {
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b *item) int { return cmpInt(a.seq, b.seq) })
	return out
}

// holes lists the segments that could not be fetched.
func (t *track) holes() []Hole {
	var out []Hole
	for _, it := range t.sorted() {
		if it.err != nil {
			out = append(out, Hole{Playlist: t.playlistName(), Seq: it.seq, URL: it.url, Err: it.err})
		}
	}
	return out
}

// stored counts the segments on disk and their bytes, with the maps'.
func (t *track) stored() (n int, bytes int64) {
	for _, it := range t.sorted() {
		if it.usable() {
			n++
			bytes += it.size
		}
	}
	for _, m := range t.maps {
		bytes += m.size
	}
	return n, bytes
}

func (t *track) duration() float64 {
	var d float64
	for _, it := range t.sorted() {
		if it.usable() {
			d += it.seg.Duration
		}
	}
	return d
}

// writeLocal writes the local media playlist: every segment on disk, by its
// local name, decrypted; a segment left out marks a discontinuity.
func (t *track) writeLocal() error {
	out := &hls.Media{
		Version:               t.src.Version,
		MediaSequence:         t.firstSeq,
		DiscontinuitySequence: t.discSeq,
		PlaylistType:          "VOD",
		EndList:               true,
		IndependentSegments:   t.src.IndependentSegments,
		Start:                 t.src.Start,
		TargetDuration:        t.src.TargetDuration,
	}
	maps := map[*item]*hls.Map{}
	gap := false
	for _, it := range t.sorted() {
		if !it.usable() {
			gap = true
			continue
		}
		s := hls.Segment{
			URI: it.name, Duration: it.seg.Duration, Title: it.seg.Title,
			Discontinuity:   it.seg.Discontinuity || (gap && len(out.Segments) > 0),
			ProgramDateTime: it.seg.ProgramDateTime,
		}
		gap = false
		if mi := it.mapItem; mi != nil {
			if maps[mi] == nil {
				maps[mi] = &hls.Map{URI: mi.name}
			}
			s.Map = maps[mi]
		}
		out.TargetDuration = max(out.TargetDuration, int(math.Round(s.Duration)))
		out.Segments = append(out.Segments, s)
	}
	return atomicfile.WriteFile(filepath.Join(t.dir, IndexName), out.Encode(), atomicfile.Public)
}

// concat joins the segments (after their initialization section) into
// file, committed whole or not at all; a device or FIFO is written in place.
func (t *track) concat(ctx context.Context, file string) error {
	var init *item
	var parts []string
	for _, it := range t.sorted() {
		if !it.usable() {
			continue
		}
		if it.mapItem != nil {
			if init != nil && init != it.mapItem {
				return fmt.Errorf("hls: --concat: the stream changes its initialization section at segment %d; play the playlist instead", it.seq)
			}
			if init == nil {
				init = it.mapItem
				parts = append(parts, filepath.Join(t.dir, init.name))
			}
		}
		parts = append(parts, filepath.Join(t.dir, it.name))
	}
	d, err := atomicfile.Classify(file)
	if err != nil {
		return err
	}
	if d == atomicfile.Stream {
		f, err := atomicfile.OpenStream(ctx, file)
		if err != nil {
			return err
		}
		err = join(f, parts)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	atomicfile.RemoveTemps(file, time.Minute) // what a killed join left
	f, err := atomicfile.CreateTempFor(file, atomicfile.Public)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := join(f, parts); err != nil {
		f.Close()
		return err
	}
	return atomicfile.Commit(f, file)
}

// join copies the files named by parts, in order, to w.
func join(w io.Writer, parts []string) error {
	for _, p := range parts {
		src, err := atomicfile.Open(p, os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
