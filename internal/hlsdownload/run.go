package hlsdownload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ferryhq/ferry/hls"
	"github.com/ferryhq/ferry/internal/atomicfile"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/transfer"
)

// IndexName is the local top-level playlist's name in the output directory.
const IndexName = "index.m3u8"

// run is one Run of a job.
type run struct {
	j      *Job
	proto  atomic.Pointer[string]
	keys   keyCache
	queue  *queue
	tracks []*track

	mu      sync.Mutex
	done    int // segments finished (fetched, found or given up)
	total   int // segments known; -1 while a live playlist may grow
	fetched int
}

// Run downloads j until it is complete, fails, or ctx ends.
func Run(ctx context.Context, j *Job) (*Result, error) {
	if j.Connections <= 0 {
		j.Connections = DefaultConnections
	}
	if j.Env == nil {
		j.Env = &send.Env{}
	}
	j.Init()
	r := &run{j: j, queue: newQueue()}
	r.keys.r = r
	res, err := r.all(ctx)
	if err != nil {
		return nil, j.Failed(ctx, "hls", err)
	}
	return res, nil
}

// all is the whole download: the playlists, the segments, the local
// playlists and the joined file.
func (r *run) all(ctx context.Context) (*Result, error) {
	j := r.j
	body, base, err := r.fetchSmall(ctx, j.URL, false, hls.MaxPlaylistSize)
	if err != nil {
		return nil, &PlaylistError{URL: j.URL, Err: err}
	}
	pl, err := r.limits().Parse(bytes.NewReader(body))
	if err != nil {
		return nil, &PlaylistError{URL: j.URL, Err: err}
	}
	res := &Result{URL: j.URL, Playlist: filepath.Join(j.Dir, IndexName)}
	var master *hls.Master
	switch p := pl.(type) {
	case *hls.Media:
		r.tracks = []*track{newTrack(r, "", j.Dir, base, p)}
	case *hls.Master:
		master = p
		v, err := pickVariant(p, j.Variant, j.MaxBandwidth)
		if err != nil {
			return nil, err
		}
		res.Variant = v
		if err := r.masterTracks(ctx, base, p, v); err != nil {
			return nil, err
		}
	}
	// The directory is made once the playlists are known to be good: a
	// playlist that cannot be had leaves nothing behind.
	if err := os.MkdirAll(j.Dir, 0o777); err != nil {
		return nil, err
	}
	if err := r.download(ctx); err != nil {
		return nil, err
	}

	// Every segment is in place: write the playlists, media ones first.
	// A live recording is written even with holes (what it missed is gone
	// for good, and the rest must not be lost), and then still fails
	// unless holes are allowed.
	var holes []Hole
	var ended []string
	live := false
	for _, t := range r.tracks {
		holes = append(holes, t.holes()...)
		live = live || t.live()
		if t.ended != nil {
			ended = append(ended, t.ended.Error())
		}
	}
	if len(holes) > 0 && !j.AllowHoles && !live {
		return nil, &HolesError{Holes: holes}
	}
	if err := atomicfile.SyncDir(j.Dir); err != nil {
		return nil, err
	}
	for _, t := range r.tracks {
		if err := t.writeLocal(); err != nil {
			return nil, err
		}
		n, b := t.stored()
		res.Segments += n
		res.Bytes += b
	}
	if master != nil {
		if err := r.writeMaster(master, res.Variant); err != nil {
			return nil, err
		}
	}
	main := r.tracks[0]
	res.Duration = main.duration()
	if j.Concat != "" {
		if err := main.concat(ctx, j.Concat); err != nil {
			return nil, err
		}
		res.Concat = j.Concat
	}
	if len(holes) > 0 && !j.AllowHoles {
		return nil, &HolesError{Holes: holes, Playlist: res.Playlist}
	}
	res.Holes = holes
	res.LiveEnded = strings.Join(ended, "; ")
	res.Fetched = r.fetched
	if p := r.proto.Load(); p != nil {
		res.Proto = *p
	}
	return res, nil
}

// limits bound what a playlist of the job may hold.
func (r *run) limits() hls.Limits { return hls.Limits{MaxSegments: r.j.MaxSegments} }

// download runs the tracks' producers and the workers until every queued
// request is done.
func (r *run) download(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.total = 0
	var producers, workers sync.WaitGroup
	for _, t := range r.tracks {
		producers.Go(func() {
			if err := t.produce(ctx); err != nil {
				cancel(err)
			}
		})
	}
	go func() {
		producers.Wait()
		r.queue.close()
	}()
	for range r.j.Connections {
		workers.Go(func() {
			for {
				g, ok := r.queue.pop(ctx)
				if !ok {
					return
				}
				if err := r.fetchGroup(ctx, g); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	workers.Wait()
	producers.Wait()
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

// masterTracks sets up the variant's media playlist and those of its
// renditions (one per group: the default, else the first autoselected,
// else the first with a URI).
func (r *run) masterTracks(ctx context.Context, base *url.URL, m *hls.Master, v *hls.Variant) error {
	add := func(name, uri string) error {
		target, err := resolve(base, uri)
		if err != nil {
			return &PlaylistError{URL: base.String(), Err: err}
		}
		body, final, err := r.fetchSmall(ctx, target, false, hls.MaxPlaylistSize)
		if err != nil {
			return &PlaylistError{URL: target, Err: err}
		}
		media, err := r.limits().ParseMedia(bytes.NewReader(body))
		if err != nil {
			return &PlaylistError{URL: target, Err: err}
		}
		r.tracks = append(r.tracks, newTrack(r, name, filepath.Join(r.j.Dir, name), final, media))
		return nil
	}
	if err := add("main", v.URI); err != nil {
		return err
	}
	for _, rd := range renditionsFor(m, v) {
		if err := add(renditionDir(rd), rd.URI); err != nil {
			return err
		}
	}
	return nil
}

// renditionsFor picks one rendition with a URI per group the variant uses.
func renditionsFor(m *hls.Master, v *hls.Variant) []*hls.Rendition {
	var out []*hls.Rendition
	for _, g := range []struct{ typ, id string }{{"AUDIO", v.Audio}, {"VIDEO", v.Video}, {"SUBTITLES", v.Subtitles}} {
		if g.id == "" {
			continue
		}
		var pick *hls.Rendition
		score := -1
		for i := range m.Renditions {
			rd := &m.Renditions[i]
			if rd.Type != g.typ || rd.GroupID != g.id || rd.URI == "" {
				continue
			}
			s := 0
			if rd.Default {
				s = 2
			} else if rd.Autoselect {
				s = 1
			}
			if s > score {
				pick, score = rd, s
			}
		}
		if pick != nil {
			out = append(out, pick)
		}
	}
	return out
}

func renditionDir(rd *hls.Rendition) string { return strings.ToLower(rd.Type) }

// pickVariant chooses the variant asked for.
func pickVariant(m *hls.Master, which string, maxBandwidth int64) (*hls.Variant, error) {
	if len(m.Variants) == 0 {
		return nil, errors.New("hls: a multivariant playlist without variants")
	}
	switch which {
	case "", "best", "worst":
	default:
		i, err := strconv.Atoi(which)
		if err != nil || i < 0 || i >= len(m.Variants) {
			return nil, fmt.Errorf("hls: variant %q: want best, worst or an index from 0 to %d", which, len(m.Variants)-1)
		}
		return &m.Variants[i], nil
	}
	// When some variants carry pictures, an audio-only one (no
	// RESOLUTION, as packagers list an audio rendition) is not a choice
	// for best or worst.
	video := slices.ContainsFunc(m.Variants, func(v hls.Variant) bool { return v.Resolution.Width > 0 })
	var order []*hls.Variant
	for i := range m.Variants {
		if v := &m.Variants[i]; !video || v.Resolution.Width > 0 {
			order = append(order, v)
		}
	}
	// Lowest first: by bandwidth, then by picture size.
	slices.SortStableFunc(order, func(a, b *hls.Variant) int {
		if a.Bandwidth != b.Bandwidth {
			return cmpInt(a.Bandwidth, b.Bandwidth)
		}
		return cmpInt(int64(a.Resolution.Width)*int64(a.Resolution.Height), int64(b.Resolution.Width)*int64(b.Resolution.Height))
	})
	if which == "worst" {
		return order[0], nil
	}
	best := order[len(order)-1]
	if maxBandwidth > 0 {
		best = order[0]
		for _, v := range order {
			if v.Bandwidth <= maxBandwidth {
				best = v
			}
		}
	}
	return best, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// writeMaster writes the local multivariant playlist: the chosen variant
// and renditions, pointing at the local media playlists.
func (r *run) writeMaster(src *hls.Master, v *hls.Variant) error {
	local := &hls.Master{Version: src.Version, IndependentSegments: src.IndependentSegments, Start: src.Start}
	lv := *v
	lv.URI = "main/" + IndexName
	for _, rd := range renditionsFor(src, v) {
		lr := *rd
		lr.URI = renditionDir(rd) + "/" + IndexName
		local.Renditions = append(local.Renditions, lr)
	}
	// Renditions carried in the variant's own stream (no URI) stay.
	for _, rd := range src.Renditions {
		if rd.URI == "" && (rd.Type == "AUDIO" && rd.GroupID == v.Audio || rd.Type == "VIDEO" && rd.GroupID == v.Video ||
			rd.Type == "SUBTITLES" && rd.GroupID == v.Subtitles || rd.Type == "CLOSED-CAPTIONS" && rd.GroupID == v.ClosedCaptions) {
			local.Renditions = append(local.Renditions, rd)
		}
	}
	local.Variants = []hls.Variant{lv}
	return atomicfile.WriteFile(filepath.Join(r.j.Dir, IndexName), local.Encode(), atomicfile.Public)
}

// resolve makes a playlist's URI absolute.
func resolve(base *url.URL, uri string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(uri))
	if err != nil {
		return "", fmt.Errorf("URI %q: %w", uri, err)
	}
	abs := base.ResolveReference(u)
	if err := transfer.CheckTarget(abs, base); err != nil {
		return "", err
	}
	return abs.String(), nil
}

// segmentDone counts a finished segment and reports it.
func (r *run) segmentDone(t *track, it *item, fetched bool) {
	r.mu.Lock()
	r.done++
	if fetched {
		r.fetched++
	}
	done, total := r.done, r.total
	r.mu.Unlock()
	r.j.Emit(transfer.SegmentEvent{Playlist: t.playlistName(), Seq: it.seq, Bytes: it.size, Done: done, Total: total, Hole: it.err != nil})
}

// known adds n segments to the total, or makes it unknown (n < 0).
func (r *run) known(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n < 0 || r.total < 0 {
		r.total = -1
		return
	}
	r.total += n
}
