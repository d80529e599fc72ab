package ferry_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/hls"
)

// hlsOrigin serves playlists and segments from memory and counts the
// requests for each path.
type hlsOrigin struct {
	t     *testing.T
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int
	// fail, if set, may answer a request instead (true when it did).
	fail func(w http.ResponseWriter, r *http.Request, hit int) bool
	url  string
}

func newHLSOrigin(t *testing.T, h2 bool) *hlsOrigin {
	o := &hlsOrigin{t: t, files: map[string][]byte{}, hits: map[string]int{}}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(o.serve))
	if h2 {
		ts.Config.Protocols = new(http.Protocols)
		ts.Config.Protocols.SetHTTP1(true)
		ts.Config.Protocols.SetUnencryptedHTTP2(true)
	}
	ts.Start()
	t.Cleanup(ts.Close)
	o.url = ts.URL
	return o
}

func (o *hlsOrigin) put(path string, b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files[path] = b
}

func (o *hlsOrigin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

func (o *hlsOrigin) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, h := range o.hits {
		n += h
	}
	return n
}

func (o *hlsOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.hits[r.URL.Path]++
	hit := o.hits[r.URL.Path]
	b, ok := o.files[r.URL.Path]
	fail := o.fail
	o.mu.Unlock()
	if fail != nil && fail(w, r, hit) {
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(b))
}

// segmentBytes is a segment's made-up content: distinct for every name.
func segmentBytes(name string, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ name[i%len(name)]
	}
	return b
}

// encrypt is AES-128-CBC with PKCS#7 padding, as an HLS packager does.
func encrypt(key, iv, plain []byte) []byte {
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	b := append(slices.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(key)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(b, b)
	return b
}

// vod adds a media playlist of n segments at dir/index.m3u8 and returns
// the segments' plain content.
func (o *hlsOrigin) vod(dir string, n int, extra func(i int) string) [][]byte {
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n")
	var segs [][]byte
	for i := range n {
		name := fmt.Sprintf("%s/seg%d.ts", dir, i)
		b := segmentBytes(name, 10000+i*1000)
		segs = append(segs, b)
		o.put(name, b)
		if extra != nil {
			pl.WriteString(extra(i))
		}
		fmt.Fprintf(&pl, "#EXTINF:2.000,\nseg%d.ts\n", i)
	}
	pl.WriteString("#EXT-X-ENDLIST\n")
	o.put(dir+"/index.m3u8", []byte(pl.String()))
	return segs
}

func hlsDownload(t *testing.T, cfg ferry.Config, req ferry.HLSRequest) (*ferry.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	task, err := mustSession(t, cfg).HLS(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return task.Wait(ctx)
}

// localSegments reads a local media playlist and returns its segments'
// files, checking every URI is a relative path to a file in the directory.
func localSegments(t *testing.T, playlist string) (*hls.Media, [][]byte) {
	t.Helper()
	b, err := os.ReadFile(playlist)
	if err != nil {
		t.Fatal(err)
	}
	m, err := hls.ParseMedia(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("local playlist: %v\n%s", err, b)
	}
	if !m.EndList || m.PlaylistType != "VOD" {
		t.Errorf("local playlist is not a finished VOD playlist:\n%s", b)
	}
	var out [][]byte
	for _, s := range m.Segments {
		if s.Key != nil || s.ByteRange != nil || strings.Contains(s.URI, "/") || strings.Contains(s.URI, ":") {
			t.Fatalf("local segment %+v: want a plain local file name", s)
		}
		data, err := os.ReadFile(filepath.Join(filepath.Dir(playlist), s.URI))
		if err != nil {
			t.Fatalf("the local playlist names a missing file: %v", err)
		}
		out = append(out, data)
	}
	return m, out
}

func TestHLSVOD(t *testing.T) {
	proto(t, func(t *testing.T, h2 bool) {
		o := newHLSOrigin(t, h2)
		want := o.vod("/v", 12, func(i int) string {
			if i == 5 {
				return "#EXT-X-DISCONTINUITY\n"
			}
			return ""
		})
		dir := t.TempDir()
		concat := filepath.Join(t.TempDir(), "all.ts")
		res, err := hlsDownload(t, testConfig(h2), ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: dir, Concat: concat})
		if err != nil {
			t.Fatal(err)
		}
		m, got := localSegments(t, filepath.Join(dir, "index.m3u8"))
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("local segments differ from the source's")
		}
		for i, s := range m.Segments {
			if s.Discontinuity != (i == 5) {
				t.Errorf("segment %d: discontinuity %v; the source has one before segment 5 only", i, s.Discontinuity)
			}
		}
		if res.HLS.Segments != 12 || res.HLS.Fetched != 12 || res.HLS.Duration != 24 || m.TargetDuration != 2 {
			t.Errorf("result %+v, target duration %d", res.HLS, m.TargetDuration)
		}
		joined, _ := os.ReadFile(concat)
		if !bytes.Equal(joined, bytes.Join(want, nil)) {
			t.Errorf("--concat output: %d bytes, want the segments joined", len(joined))
		}

		// A rerun fetches only the playlist.
		before := o.total()
		res, err = hlsDownload(t, testConfig(h2), ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if n := o.total() - before; n != 1 || res.HLS.Fetched != 0 || res.HLS.Segments != 12 {
			t.Errorf("rerun: %d requests, %d fetched; want only the playlist", n, res.HLS.Fetched)
		}
	})
}

func TestHLSAES128(t *testing.T) {
	o := newHLSOrigin(t, false)
	key := []byte("0123456789abcdef")
	o.put("/k/key.bin", key)
	explicitIV := bytes.Repeat([]byte{0x42}, 16)
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n")
	var want [][]byte
	for i := range 6 {
		seq := 7 + i
		plain := segmentBytes(fmt.Sprintf("s%d", i), 5000+i*333)
		want = append(want, plain)
		iv := make([]byte, 16)
		binary.BigEndian.PutUint64(iv[8:], uint64(seq)) // the media sequence number
		switch {
		case i == 0:
			pl.WriteString("#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\"\n")
		case i == 3:
			// From here on an explicit IV.
			pl.WriteString("#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x42424242424242424242424242424242\n")
		}
		if i >= 3 {
			iv = explicitIV
		}
		o.put(fmt.Sprintf("/k/s%d.ts", i), encrypt(key, iv, plain))
		fmt.Fprintf(&pl, "#EXTINF:2,\ns%d.ts\n", i)
	}
	pl.WriteString("#EXT-X-ENDLIST\n")
	o.put("/k/index.m3u8", []byte(pl.String()))
	dir := t.TempDir()
	if _, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/k/index.m3u8", Dir: dir}); err != nil {
		t.Fatal(err)
	}
	m, got := localSegments(t, filepath.Join(dir, "index.m3u8"))
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatal("decrypted segments differ from the plain source")
	}
	if m.MediaSequence != 7 {
		t.Errorf("media sequence %d, want 7", m.MediaSequence)
	}
	if n := o.count("/k/key.bin"); n != 1 {
		t.Errorf("the key was fetched %d times, want once", n)
	}
}

func TestHLSByteRanges(t *testing.T) {
	o := newHLSOrigin(t, false)
	var file []byte
	var want [][]byte
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:2\n")
	for i := range 20 {
		b := segmentBytes(fmt.Sprintf("r%d", i), 3000+i*17)
		if i == 5 {
			fmt.Fprintf(&pl, "#EXTINF:2,\n#EXT-X-BYTERANGE:%d@%d\nall.ts\n", len(b), len(file))
		} else {
			fmt.Fprintf(&pl, "#EXTINF:2,\n#EXT-X-BYTERANGE:%d\nall.ts\n", len(b))
		}
		if i == 0 {
			// The first range needs its offset.
			s := pl.String()
			pl.Reset()
			pl.WriteString(strings.Replace(s, fmt.Sprintf("BYTERANGE:%d\n", len(b)), fmt.Sprintf("BYTERANGE:%d@0\n", len(b)), 1))
		}
		want = append(want, b)
		file = append(file, b...)
	}
	pl.WriteString("#EXT-X-ENDLIST\n")
	o.put("/r/all.ts", file)
	o.put("/r/index.m3u8", []byte(pl.String()))
	dir := t.TempDir()
	if _, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/r/index.m3u8", Dir: dir, Connections: 2}); err != nil {
		t.Fatal(err)
	}
	_, got := localSegments(t, filepath.Join(dir, "index.m3u8"))
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatal("byte-range segments differ from the source's ranges")
	}
	// Adjacent ranges of the one file are fetched together.
	if n := o.count("/r/all.ts"); n >= 20 || n < 3 {
		t.Errorf("%d requests for 20 adjacent ranges; want them coalesced (8 a request: 3)", n)
	}
}

func TestHLSInitSection(t *testing.T) {
	o := newHLSOrigin(t, false)
	initB := segmentBytes("init", 700)
	o.put("/f/init.mp4", initB)
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n")
	var want [][]byte
	for i := range 5 {
		b := segmentBytes(fmt.Sprintf("f%d", i), 4000)
		want = append(want, b)
		o.put(fmt.Sprintf("/f/s%d.m4s", i), b)
		fmt.Fprintf(&pl, "#EXTINF:2,\ns%d.m4s\n", i)
	}
	pl.WriteString("#EXT-X-ENDLIST\n")
	o.put("/f/index.m3u8", []byte(pl.String()))
	dir := t.TempDir()
	concat := filepath.Join(dir, "joined.mp4")
	if _, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/f/index.m3u8", Dir: dir, Concat: concat}); err != nil {
		t.Fatal(err)
	}
	m, got := localSegments(t, filepath.Join(dir, "index.m3u8"))
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatal("segments differ")
	}
	if m.Segments[0].Map == nil || strings.Contains(m.Segments[0].Map.URI, "/") {
		t.Fatalf("local map %+v: want a local file", m.Segments[0].Map)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, m.Segments[0].Map.URI)); !bytes.Equal(b, initB) {
		t.Error("local init section differs")
	}
	if n := o.count("/f/init.mp4"); n != 1 {
		t.Errorf("init section fetched %d times", n)
	}
	joined, _ := os.ReadFile(concat)
	if !bytes.Equal(joined, append(slices.Clone(initB), bytes.Join(want, nil)...)) {
		t.Error("--concat: want the init section then the segments")
	}
}

func TestHLSMaster(t *testing.T) {
	o := newHLSOrigin(t, false)
	o.vod("/m/low", 3, nil)
	o.vod("/m/mid", 3, nil)
	o.vod("/m/high", 3, nil)
	o.vod("/m/audio-en", 3, nil)
	o.vod("/m/audio-fr", 3, nil)
	o.put("/m/master.m3u8", []byte(`#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="fr",LANGUAGE="fr",AUTOSELECT=YES,URI="audio-fr/index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="audio-en/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO="aud"
mid/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=320x180,AUDIO="aud"
low/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,AUDIO="aud"
high/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="mp4a.40.2",AUDIO="aud"
audio-en/index.m3u8
`))
	for _, c := range []struct {
		variant string
		max     int64
		want    string
	}{
		{"", 0, "high"},
		{"worst", 0, "low"}, // not the audio-only variant: pictures were asked for
		{"0", 0, "mid"},
		{"best", 1000000, "mid"},
	} {
		dir := t.TempDir()
		res, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/m/master.m3u8", Dir: dir, Variant: c.variant, MaxBandwidth: c.max})
		if err != nil {
			t.Fatal(err)
		}
		if res.HLS.Variant == nil || res.HLS.Variant.URI != c.want+"/index.m3u8" {
			t.Errorf("variant %q max %d: took %+v, want %s", c.variant, c.max, res.HLS.Variant, c.want)
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, "index.m3u8"))
		local, err := hls.ParseMaster(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("local master: %v\n%s", err, b)
		}
		if len(local.Variants) != 1 || len(local.Renditions) != 1 || local.Renditions[0].Language != "en" {
			t.Errorf("local master:\n%s\nwant the variant and the default audio rendition", b)
		}
		localSegments(t, filepath.Join(dir, local.Variants[0].URI))
		localSegments(t, filepath.Join(dir, local.Renditions[0].URI))
		if res.HLS.Segments != 6 {
			t.Errorf("%d segments, want 3 video and 3 audio", res.HLS.Segments)
		}
	}
}

// A segment that answers 404 twice, and one cut mid-body, are retried; the
// download is whole.
func TestHLSSegmentRetries(t *testing.T) {
	o := newHLSOrigin(t, false)
	want := o.vod("/v", 6, nil)
	o.fail = func(w http.ResponseWriter, r *http.Request, hit int) bool {
		switch {
		case r.URL.Path == "/v/seg2.ts" && hit <= 2:
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		case r.URL.Path == "/v/seg4.ts" && hit == 1:
			w.Header().Set("Content-Length", "14000")
			w.WriteHeader(http.StatusOK)
			w.Write(want[4][:5000]) // then the connection ends
			panic(http.ErrAbortHandler)
		}
		return false
	}
	dir := t.TempDir()
	res, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, got := localSegments(t, filepath.Join(dir, "index.m3u8"))
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatal("segments differ")
	}
	if res.Metrics.Retries < 3 {
		t.Errorf("%d retries, want at least 3", res.Metrics.Retries)
	}
}

// A VOD segment the server says is not there becomes a hole at its first
// answer: every segment of a VOD playlist is published, so a 404 is final.
func TestHLSVODMissingSegmentIsNotRetried(t *testing.T) {
	o := newHLSOrigin(t, false)
	o.vod("/v", 5, nil)
	o.fail = func(w http.ResponseWriter, r *http.Request, hit int) bool {
		if r.URL.Path == "/v/seg3.ts" {
			http.NotFound(w, r)
			return true
		}
		return false
	}
	cfg := testConfig(false)
	cfg.Retry.MaxAttempts = 5
	res, err := hlsDownload(t, cfg, ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: t.TempDir(), AllowHoles: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.HLS.Holes) != 1 || res.HLS.Holes[0].Seq != 3 {
		t.Fatalf("holes %v, want segment 3", res.HLS.Holes)
	}
	if n := o.count("/v/seg3.ts"); n != 1 {
		t.Errorf("the missing segment was asked for %d times, want once", n)
	}
}

// A segment that never comes fails the download, and no playlist names a
// missing file; with holes allowed the playlist goes without it.
func TestHLSHoles(t *testing.T) {
	o := newHLSOrigin(t, false)
	o.vod("/v", 5, nil)
	o.fail = func(w http.ResponseWriter, r *http.Request, hit int) bool {
		if r.URL.Path == "/v/seg3.ts" {
			http.Error(w, "gone", http.StatusInternalServerError)
			return true
		}
		return false
	}
	cfg := testConfig(false)
	cfg.Retry.MaxAttempts = 3
	dir := t.TempDir()
	_, err := hlsDownload(t, cfg, ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: dir})
	var he *ferry.HLSHolesError
	if !errors.As(err, &he) || len(he.Holes) != 1 || he.Holes[0].Seq != 3 {
		t.Fatalf("err = %v, want segment 3 reported missing", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.m3u8")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a playlist was written for an incomplete download")
	}
	res, err := hlsDownload(t, cfg, ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: dir, AllowHoles: true})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := localSegments(t, filepath.Join(dir, "index.m3u8"))
	if len(m.Segments) != 4 || !m.Segments[3].Discontinuity || len(res.HLS.Holes) != 1 || res.HLS.Fetched != 0 {
		t.Errorf("with holes allowed: %d segments (discontinuity after the hole: %v), result %+v",
			len(m.Segments), len(m.Segments) == 4 && m.Segments[3].Discontinuity, res.HLS)
	}
}

func TestHLSBadKeyAndPlaylist(t *testing.T) {
	o := newHLSOrigin(t, false)
	o.vod("/k", 3, func(i int) string {
		if i == 0 {
			return "#EXT-X-KEY:METHOD=AES-128,URI=\"missing.key\"\n"
		}
		return ""
	})
	o.put("/bad/index.m3u8", []byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\nseg0.ts\n"))
	o.put("/empty/index.m3u8", []byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXT-X-BYTERANGE:0@0\na.ts\n#EXT-X-ENDLIST\n"))
	cfg := testConfig(false)
	cfg.Retry.MaxAttempts = 2
	_, err := hlsDownload(t, cfg, ferry.HLSRequest{URL: o.url + "/k/index.m3u8", Dir: t.TempDir()})
	var ke *ferry.HLSKeyError
	if !errors.As(err, &ke) {
		t.Errorf("missing key: err = %v, want an HLSKeyError", err)
	}
	_, err = hlsDownload(t, cfg, ferry.HLSRequest{URL: o.url + "/bad/index.m3u8", Dir: t.TempDir()})
	var pe *ferry.HLSPlaylistError
	var se *hls.SyntaxError
	if !errors.As(err, &pe) || !errors.As(err, &se) {
		t.Errorf("malformed playlist: err = %v, want an HLSPlaylistError with the syntax error", err)
	}
	_, err = hlsDownload(t, cfg, ferry.HLSRequest{URL: o.url + "/empty/index.m3u8", Dir: t.TempDir()})
	if !errors.As(err, &pe) {
		t.Errorf("an empty byte range: err = %v, want an HLSPlaylistError", err)
	}
}

// A live playlist that gains a segment every second is recorded for the
// time asked, into a VOD playlist with contiguous sequence numbers.
func TestHLSLive(t *testing.T) {
	live := ferrytest.NewLiveHLS(t, time.Second, 5)
	dir := t.TempDir()
	res, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: live.URL + "/live.m3u8", Dir: dir, LiveDuration: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m, got := localSegments(t, filepath.Join(dir, "index.m3u8"))
	// Three segments from the end at the start, then about one a second.
	if n := len(m.Segments); n < 5 || n > 9 {
		t.Errorf("%d segments recorded in 4s", n)
	}
	if m.MediaSequence != 2 {
		t.Errorf("recording starts at %d, want 2 (three from the end of 0-4)", m.MediaSequence)
	}
	for i, b := range got {
		if !bytes.Equal(b, ferrytest.Segment(m.MediaSequence+int64(i))) {
			t.Fatalf("segment %d of the recording is not segment %d of the stream: sequence numbers not contiguous", i, m.MediaSequence+int64(i))
		}
	}
	if res.HLS.Segments != len(m.Segments) {
		t.Errorf("result says %d segments, playlist has %d", res.HLS.Segments, len(m.Segments))
	}
	// RFC 8216 §6.3.4: a reload waits a target duration (1 s) after one
	// that brought news, half as long after one that did not: over 4 s,
	// the first load and 4 to 8 reloads.
	if n := live.Loads(); n < 5 || n > 9 {
		t.Errorf("the playlist was loaded %d times in 4 s", n)
	}
}

// A live playlist that ends (EXT-X-ENDLIST) ends the recording.
func TestHLSLiveEnds(t *testing.T) {
	live := ferrytest.NewLiveHLS(t, time.Second, 3)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		live.End()
	}()
	dir := t.TempDir()
	if _, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: live.URL + "/live.m3u8", Dir: dir}); err != nil {
		t.Fatal(err)
	}
	m, _ := localSegments(t, filepath.Join(dir, "index.m3u8"))
	if last := m.MediaSequence + int64(len(m.Segments)) - 1; last != live.Newest() {
		t.Errorf("recorded up to %d, the stream ended at %d", last, live.Newest())
	}
}

// A live stream that goes away without EXT-X-ENDLIST ends the recording
// with what it has, and says why.
func TestHLSLiveGone(t *testing.T) {
	live := ferrytest.NewLiveHLS(t, time.Second, 3)
	time.AfterFunc(2500*time.Millisecond, live.Gone)
	dir := t.TempDir()
	res, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: live.URL + "/live.m3u8", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := localSegments(t, filepath.Join(dir, "index.m3u8"))
	if len(m.Segments) < 3 || res.HLS.LiveEnded == "" || !strings.Contains(res.HLS.LiveEnded, "404") {
		t.Errorf("%d segments, ended: %q", len(m.Segments), res.HLS.LiveEnded)
	}
}

// Segments a live playlist dropped before they could be fetched fail the
// recording (holes were not allowed), but its playlist is written without
// them: nothing recorded is lost.
func TestHLSLiveHoles(t *testing.T) {
	live := ferrytest.NewLiveHLS(t, 250*time.Millisecond, 1) // reloads come every second
	dir := t.TempDir()
	_, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: live.URL + "/live.m3u8", Dir: dir, LiveDuration: 2 * time.Second})
	var he *ferry.HLSHolesError
	if !errors.As(err, &he) || he.Playlist == "" {
		t.Fatalf("err = %v, want holes with the playlist written", err)
	}
	m, _ := localSegments(t, filepath.Join(dir, "index.m3u8"))
	if len(m.Segments) == 0 {
		t.Fatal("an empty recording")
	}
	for _, s := range m.Segments[1:] {
		if s.Discontinuity {
			return // the gaps are marked
		}
	}
	t.Error("no discontinuity marks the dropped segments")
}

// A media sequence number that would pass 2^63-1 is a playlist error, not
// segments silently dropped.
func TestHLSSequenceOverflowIsAPlaylistError(t *testing.T) {
	o := newHLSOrigin(t, false)
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:9223372036854775805\n")
	for i := range 5 {
		o.put(fmt.Sprintf("/o/seg%d.ts", i), segmentBytes("s", 100))
		fmt.Fprintf(&pl, "#EXTINF:2,\nseg%d.ts\n", i)
	}
	pl.WriteString("#EXT-X-ENDLIST\n")
	o.put("/o/index.m3u8", []byte(pl.String()))
	_, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/o/index.m3u8", Dir: t.TempDir()})
	var pe *ferry.HLSPlaylistError
	var se *hls.SyntaxError
	if !errors.As(err, &pe) || !errors.As(err, &se) {
		t.Fatalf("err = %v, want a playlist error", err)
	}
}

// A playlist of more segments than the request allows is refused, naming
// the limit.
func TestHLSSegmentLimit(t *testing.T) {
	o := newHLSOrigin(t, false)
	o.vod("/v", 11, nil)
	_, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: t.TempDir(), MaxSegments: 10})
	le, ok := errors.AsType[*hls.LimitError](err)
	if !ok || le.Limit != 10 {
		t.Fatalf("err = %v, want the limit of 10 segments", err)
	}
	if n := o.total(); n != 1 {
		t.Errorf("%d requests, want only the playlist's", n)
	}
	if _, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: t.TempDir(), MaxSegments: 11}); err != nil {
		t.Fatal(err)
	}
}

// A live playlist that brings a hundred new segments at every reload, for
// ever, ends the recording at the limit with what it has, instead of
// growing without bound.
func TestHLSLiveStopsAtTheSegmentLimit(t *testing.T) {
	var loads atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/live.m3u8" {
			w.Write([]byte("segment"))
			return
		}
		first := loads.Add(1) * 100
		var pl strings.Builder
		fmt.Fprintf(&pl, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:%d\n", first)
		for i := range 100 {
			fmt.Fprintf(&pl, "#EXTINF:1,\ns%d.ts\n", first+int64(i))
		}
		w.Write([]byte(pl.String()))
	}))
	defer ts.Close()
	dir := t.TempDir()
	res, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: ts.URL + "/live.m3u8", Dir: dir, MaxSegments: 150})
	if err != nil {
		t.Fatal(err)
	}
	if res.HLS.Segments != 150 || !strings.Contains(res.HLS.LiveEnded, "150 segments") {
		t.Fatalf("%d segments, ended because %q; want 150, at the limit", res.HLS.Segments, res.HLS.LiveEnded)
	}
	if n := loads.Load(); n > 3 {
		t.Errorf("the playlist was loaded %d times after the limit was reached", n)
	}
}
