//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
)

const (
	// hlsSeconds is the length of the generated streams: five segments.
	hlsSeconds = 10
	// hlsTimeout bounds one ffmpeg, ffprobe or ferry run.
	hlsTimeout = 2 * time.Minute
	// hlsProbeSlack is how far the ffprobe duration of the downloaded
	// playlist may be from the source's.
	hlsProbeSlack = 0.1
	// hlsConcatSlack is how far the duration of the --concat file may be
	// from the playlist's. A joined file's duration runs from its first
	// to its last timestamp of any stream: the AAC audio's last frame
	// ends about 21 ms after the last video frame, which the playlist's
	// EXTINFs, cut on video keyframes, do not count.
	hlsConcatSlack = 0.2
)

// --- streams ----------------------------------------------------------------

var (
	hlsMu      sync.Mutex
	hlsStreams = map[peer.HLSKind]*peer.HLSStream{}
)

// hlsStream returns a stream of the given kind under dataDir/hls, made
// once per test binary run and shared.
func hlsStream(t *testing.T, ffmpeg string, kind peer.HLSKind) *peer.HLSStream {
	t.Helper()
	hlsMu.Lock()
	defer hlsMu.Unlock()
	if s := hlsStreams[kind]; s != nil {
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), hlsTimeout)
	defer cancel()
	s, err := peer.MakeHLS(ctx, ffmpeg, dataDir, kind, hlsSeconds)
	if err != nil {
		t.Fatalf("generate HLS stream: %v", err)
	}
	t.Logf("HLS stream %s: %s, %d segments, %.3fs, made in %v", kind, s.Playlist, s.Segments, s.Duration, s.Elapsed.Round(time.Millisecond))
	hlsStreams[kind] = s
	return s
}

// hlsChosenVariant is the variant `--variant choice` picks from the master s,
// by its video bit rate, in the order of the master's BANDWIDTH.
func hlsChosenVariant(t *testing.T, s *peer.HLSStream, choice string) peer.HLSVariant {
	t.Helper()
	byRate := func(a, b peer.HLSVariant) int { return a.Bitrate - b.Bitrate }
	switch choice {
	case "", "best":
		return slices.MaxFunc(s.Variants, byRate)
	case "worst":
		return slices.MinFunc(s.Variants, byRate)
	}
	i, err := strconv.Atoi(choice)
	if err != nil || i < 0 || i >= len(s.Variants) {
		t.Fatalf("variant %q of %d", choice, len(s.Variants))
	}
	return s.Variants[i]
}

// --- ferry hls ----------------------------------------------------------------

// hlsResult is the --json object printed by `ferry hls`.
type hlsResult struct {
	URL          string  `json:"url"`
	Path         string  `json:"path"`
	Segments     int     `json:"segments"`
	SizeDownload int64   `json:"size_download"`
	TimeTotal    float64 `json:"time_total"`
}

// hlsRun is one `ferry hls` run into a test's temporary directory.
type hlsRun struct {
	url    string
	out    string // -o
	concat string // --concat
	res    cmdResult
	json   hlsResult
}

// runFerryHLS runs `ferry hls url -o dir/out --json -q --concat
// dir/joined.<ext> extra...`, fails the test unless it exits 0 with a
// valid JSON result, and checks the result's url and path.
func runFerryHLS(t *testing.T, dir, url string, fmp4 bool, extra ...string) hlsRun {
	t.Helper()
	r := hlsRun{url: url, out: filepath.Join(dir, "out"), concat: filepath.Join(dir, "joined.ts")}
	if fmp4 {
		r.concat = filepath.Join(dir, "joined.mp4")
	}
	args := append([]string{"hls", url, "-o", r.out, "--json", "-q", "--concat", r.concat}, extra...)
	r.res = runCmd(t, hlsTimeout, ferryBin, args...)
	if r.res.exitCode != 0 {
		t.Fatalf("ferry hls failed: %s", r.res)
	}
	r.json = parseHLSJSON(t, r.res)
	if r.json.URL != url {
		t.Errorf("--json url %q, want %q", r.json.URL, url)
	}
	if want := filepath.Join(r.out, "index.m3u8"); filepath.Clean(r.json.Path) != want {
		t.Errorf("--json path %q, want %q", r.json.Path, want)
	}
	if r.json.TimeTotal <= 0 {
		t.Errorf("--json time_total %v", r.json.TimeTotal)
	}
	return r
}

// parseHLSJSON decodes the one JSON object `ferry hls --json` prints and
// checks that the fields the CLI contract promises are there.
func parseHLSJSON(t *testing.T, res cmdResult) hlsResult {
	t.Helper()
	out := strings.TrimSpace(res.stdout)
	var r hlsResult
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("ferry hls --json: stdout is not one JSON object: %v\n%s", err, res)
	}
	if err := json.Unmarshal([]byte(out), &fields); err != nil {
		t.Fatalf("ferry hls --json: %v", err)
	}
	for _, k := range []string{"url", "path", "segments", "size_download", "time_total"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("ferry hls --json: no %q in %s", k, out)
		}
	}
	if e, ok := fields["error"]; ok && string(e) != "null" {
		t.Errorf("ferry hls --json: exit 0 but error = %s", e)
	}
	return r
}

// --- playlists ----------------------------------------------------------------

// hlsPlaylist is what the tests need of a playlist, read by this file's own
// parser rather than ferry's.
type hlsPlaylist struct {
	path          string
	variants      []hlsVariantLine    // EXT-X-STREAM-INF
	renditions    []map[string]string // EXT-X-MEDIA attributes
	mediaSequence int64
	segments      []hlsSegment
	endList       bool
	keys          int // EXT-X-KEY tags with a METHOD other than NONE
	byteRanges    int // EXT-X-BYTERANGE tags and BYTERANGE attributes
}

type hlsVariantLine struct {
	attrs map[string]string
	uri   string
}

type hlsSegment struct {
	uri      string
	duration float64
	rng      *hlsRange         // nil: the whole resource
	key      map[string]string // EXT-X-KEY in effect; nil when none
	mapURI   string            // EXT-X-MAP in effect
	mapRange *hlsRange
}

type hlsRange struct{ length, offset int64 }

func (p *hlsPlaylist) master() bool { return len(p.variants) > 0 }

// uris returns every URI the playlist refers to.
func (p *hlsPlaylist) uris() []string {
	var u []string
	for _, v := range p.variants {
		u = append(u, v.uri)
	}
	for _, r := range p.renditions {
		if r["URI"] != "" {
			u = append(u, r["URI"])
		}
	}
	for _, s := range p.segments {
		u = append(u, s.uri)
		if s.mapURI != "" {
			u = append(u, s.mapURI)
		}
		if s.key != nil {
			u = append(u, s.key["URI"])
		}
	}
	return u
}

func readHLSPlaylist(t *testing.T, file string) *hlsPlaylist {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("playlist: %v", err)
	}
	p, err := parseHLSPlaylist(file, b)
	if err != nil {
		t.Fatalf("playlist %s: %v\n%s", file, err, b)
	}
	return p
}

// parseHLSPlaylist reads the tags that ffmpeg writes and a downloader must keep
// or rewrite.
func parseHLSPlaylist(file string, b []byte) (*hlsPlaylist, error) {
	p := &hlsPlaylist{path: file}
	var (
		seg       hlsSegment
		streamInf map[string]string
		key       map[string]string
		mapURI    string
		mapRange  *hlsRange
		next      = map[string]int64{} // where a byte range without offset starts, per URI
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		tag, value, _ := strings.Cut(line, ":")
		var err error
		switch {
		case line == "":
		case tag == "#EXTINF":
			d, _, _ := strings.Cut(value, ",")
			seg.duration, err = strconv.ParseFloat(d, 64)
		case tag == "#EXT-X-BYTERANGE":
			p.byteRanges++
			seg.rng, err = parseHLSRange(value)
		case tag == "#EXT-X-KEY":
			key = parseHLSAttrs(value)
			if key["METHOD"] == "NONE" {
				key = nil
			} else {
				p.keys++
			}
		case tag == "#EXT-X-MAP":
			attrs := parseHLSAttrs(value)
			mapURI, mapRange = attrs["URI"], nil
			if br, ok := attrs["BYTERANGE"]; ok {
				p.byteRanges++
				mapRange, err = parseHLSRange(br)
			}
		case tag == "#EXT-X-MEDIA-SEQUENCE":
			p.mediaSequence, err = strconv.ParseInt(value, 10, 64)
		case tag == "#EXT-X-MEDIA":
			p.renditions = append(p.renditions, parseHLSAttrs(value))
		case tag == "#EXT-X-STREAM-INF":
			streamInf = parseHLSAttrs(value)
		case tag == "#EXT-X-ENDLIST":
			p.endList = true
		case strings.HasPrefix(line, "#"):
		case streamInf != nil:
			p.variants = append(p.variants, hlsVariantLine{attrs: streamInf, uri: line})
			streamInf = nil
		default:
			seg.uri, seg.key, seg.mapURI, seg.mapRange = line, key, mapURI, mapRange
			if seg.rng != nil {
				if seg.rng.offset < 0 {
					seg.rng.offset = next[line]
				}
				next[line] = seg.rng.offset + seg.rng.length
			}
			p.segments = append(p.segments, seg)
			seg = hlsSegment{}
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %v", line, err)
		}
	}
	return p, sc.Err()
}

// parseHLSRange reads "length[@offset]"; offset -1 means none.
func parseHLSRange(s string) (*hlsRange, error) {
	l, o, hasOffset := strings.Cut(s, "@")
	r := &hlsRange{offset: -1}
	var err error
	if r.length, err = strconv.ParseInt(l, 10, 64); err != nil {
		return nil, err
	}
	if hasOffset {
		if r.offset, err = strconv.ParseInt(o, 10, 64); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// parseHLSAttrs reads an attribute list: NAME=value pairs separated by
// commas, where a quoted value may hold commas. Quotes are removed.
func parseHLSAttrs(s string) map[string]string {
	attrs := map[string]string{}
	for s != "" {
		name, rest, _ := strings.Cut(s, "=")
		var value string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				end = len(rest) - 1
			}
			value, rest = rest[1:1+end], rest[min(len(rest), 2+end):]
			rest = strings.TrimPrefix(rest, ",")
		} else {
			value, rest, _ = strings.Cut(rest, ",")
		}
		attrs[strings.TrimSpace(name)] = value
		s = rest
	}
	return attrs
}

// --- the source's bytes ----------------------------------------------------------

// hlsSourceMedia returns what a downloader must store for the segments of
// the source media playlist rel (relative to dataDir): the bytes of its
// initialization section (nil when none) and of each segment, cut out of
// their byte ranges and decrypted.
func hlsSourceMedia(t *testing.T, rel string) (init []byte, segments [][]byte) {
	t.Helper()
	file := filepath.Join(dataDir, filepath.FromSlash(rel))
	p := readHLSPlaylist(t, file)
	for i, s := range p.segments {
		if s.mapURI != "" && init == nil {
			init = hlsSourceBytes(t, rel, s.mapURI, s.mapRange)
		}
		b := hlsSourceBytes(t, rel, s.uri, s.rng)
		if s.key != nil {
			b = hlsDecrypt(t, rel, s.key, p.mediaSequence+int64(i), b)
		}
		segments = append(segments, b)
	}
	return init, segments
}

// hlsSourceBytes reads uri, as the playlist rel refers to it, from dataDir.
func hlsSourceBytes(t *testing.T, rel, uri string, r *hlsRange) []byte {
	t.Helper()
	if !strings.HasPrefix(uri, "/") {
		uri = path.Join(path.Dir(rel), uri)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, filepath.FromSlash(uri)))
	if err != nil {
		t.Fatalf("source: %v", err)
	}
	if r != nil {
		if r.offset+r.length > int64(len(b)) {
			t.Fatalf("source %s: byte range %d@%d past its %d bytes", uri, r.length, r.offset, len(b))
		}
		b = b[r.offset : r.offset+r.length]
	}
	return b
}

// hlsDecrypt decrypts an AES-128 segment: CBC with the key's IV or,
// when it has none, the segment's media sequence number, then PKCS#7
// padding removed (RFC 8216 §5.2).
func hlsDecrypt(t *testing.T, rel string, key map[string]string, seq int64, b []byte) []byte {
	t.Helper()
	if key["METHOD"] != "AES-128" {
		t.Fatalf("source %s: key method %q", rel, key["METHOD"])
	}
	block, err := aes.NewCipher(hlsSourceBytes(t, rel, key["URI"], nil))
	if err != nil {
		t.Fatalf("source %s: %v", rel, err)
	}
	iv := make([]byte, aes.BlockSize)
	if v := key["IV"]; v != "" {
		h, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X"))
		if err != nil || len(h) != aes.BlockSize {
			t.Fatalf("source %s: IV %q", rel, v)
		}
		iv = h
	} else {
		binary.BigEndian.PutUint64(iv[8:], uint64(seq))
	}
	if len(b) == 0 || len(b)%aes.BlockSize != 0 {
		t.Fatalf("source %s: %d encrypted bytes", rel, len(b))
	}
	plain := make([]byte, len(b))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, b)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > aes.BlockSize || !bytes.Equal(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		t.Fatalf("source %s: segment %d does not decrypt to PKCS#7 padding", rel, seq)
	}
	return plain[:len(plain)-pad]
}

// --- the download's files ----------------------------------------------------------

// localHLS is a downloaded stream: its top playlist and the media
// playlists that go with it.
type localHLS struct {
	top   *hlsPlaylist
	main  *hlsPlaylist // the media playlist of the chosen variant, or top
	audio *hlsPlaylist // the audio rendition's media playlist; nil when none
}

// segmentCount is the number of segments of all the local media
// playlists.
func (l *localHLS) segmentCount() int {
	n := len(l.main.segments)
	if l.audio != nil {
		n += len(l.audio.segments)
	}
	return n
}

// readLocalHLS reads the download in out and checks that it stands alone:
// every URI of every playlist is a relative path to a file inside out, no
// playlist has an EXT-X-KEY or a byte range left, and the media playlists
// are complete.
func readLocalHLS(t *testing.T, out string) *localHLS {
	t.Helper()
	l := &localHLS{top: readLocalHLSPlaylist(t, out, filepath.Join(out, "index.m3u8"))}
	l.main = l.top
	if !l.top.master() {
		return l
	}
	if n := len(l.top.variants); n != 1 {
		t.Fatalf("local master has %d variants, want the chosen one only", n)
	}
	dir := filepath.Dir(l.top.path)
	l.main = readLocalHLSPlaylist(t, out, filepath.Join(dir, filepath.FromSlash(l.top.variants[0].uri)))
	for _, r := range l.top.renditions {
		if r["TYPE"] == "AUDIO" && r["URI"] != "" {
			if l.audio != nil {
				t.Errorf("local master has more than one audio rendition")
			}
			l.audio = readLocalHLSPlaylist(t, out, filepath.Join(dir, filepath.FromSlash(r["URI"])))
		}
	}
	return l
}

func readLocalHLSPlaylist(t *testing.T, out, file string) *hlsPlaylist {
	t.Helper()
	p := readHLSPlaylist(t, file)
	var problems []string
	for _, uri := range p.uris() {
		if strings.Contains(uri, "://") || strings.HasPrefix(uri, "/") {
			problems = append(problems, fmt.Sprintf("URI %q is not a relative path", uri))
			continue
		}
		target := filepath.Join(filepath.Dir(file), filepath.FromSlash(uri))
		if rel, err := filepath.Rel(out, target); err != nil || !filepath.IsLocal(rel) {
			problems = append(problems, fmt.Sprintf("URI %q points outside %s", uri, out))
		}
		if fi, err := os.Stat(target); err != nil || !fi.Mode().IsRegular() {
			problems = append(problems, fmt.Sprintf("URI %q: not a file: %v", uri, err))
		}
	}
	if p.keys > 0 {
		problems = append(problems, fmt.Sprintf("%d EXT-X-KEY tags left; the segments should be stored decrypted", p.keys))
	}
	if p.byteRanges > 0 {
		problems = append(problems, fmt.Sprintf("%d byte ranges left; each range should be a file of its own", p.byteRanges))
	}
	if !p.master() && !p.endList {
		problems = append(problems, "no EXT-X-ENDLIST in a VOD download")
	}
	if len(problems) > 0 {
		b, _ := os.ReadFile(file)
		t.Fatalf("%s:\n  %s\nthe playlist:\n%s", file, strings.Join(problems, "\n  "), b)
	}
	return p
}

// checkHLSMedia checks that the local media playlist p holds the source media
// playlist rel's segments (and initialization section), byte for byte
// what hlsSourceMedia says, and returns their concatenation.
func checkHLSMedia(t *testing.T, p *hlsPlaylist, rel string) []byte {
	t.Helper()
	init, want := hlsSourceMedia(t, rel)
	if len(p.segments) != len(want) {
		t.Fatalf("%s: %d segments, want %d as in %s", p.path, len(p.segments), len(want), rel)
	}
	var joined []byte
	if init != nil {
		if p.segments[0].mapURI == "" {
			t.Fatalf("%s: no EXT-X-MAP, but %s has one", p.path, rel)
		}
		checkHLSFile(t, p, p.segments[0].mapURI, init, "initialization section")
		joined = append(joined, init...)
	}
	for i, s := range p.segments {
		checkHLSFile(t, p, s.uri, want[i], fmt.Sprintf("segment %d", i))
		joined = append(joined, want[i]...)
	}
	return joined
}

func checkHLSFile(t *testing.T, p *hlsPlaylist, uri string, want []byte, what string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(filepath.Dir(p.path), filepath.FromSlash(uri)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %s %s: %d bytes sha256 %x, want %d bytes sha256 %x",
			p.path, what, uri, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

// checkHLSDownload checks the download r of the stream s, whose chosen
// variant is v (zero for a media playlist): the files against the
// source's, the --json segment count, and the --concat file's bytes. It
// returns how many bytes of media the download stored.
func checkHLSDownload(t *testing.T, s *peer.HLSStream, v peer.HLSVariant, r hlsRun) (media int64) {
	t.Helper()
	l := readLocalHLS(t, r.out)
	mainRel := s.Playlist
	if s.Variants != nil {
		mainRel = v.Playlist
		checkHLSVariantAttrs(t, l.top, v)
	}
	joined := checkHLSMedia(t, l.main, mainRel)
	media = int64(len(joined))
	switch {
	case s.Audio != "" && l.audio == nil:
		t.Errorf("the local master has no audio rendition; the source's is %s", s.Audio)
	case s.Audio != "":
		audio := checkHLSMedia(t, l.audio, s.Audio)
		media += int64(len(audio))
	}

	// The contract's "segments" may count the main media playlist's or
	// all downloaded ones; they differ only with an audio rendition.
	if n := r.json.Segments; n != len(l.main.segments) && n != l.segmentCount() {
		t.Errorf("--json segments %d, want %d (main media playlist) or %d (all media playlists)",
			n, len(l.main.segments), l.segmentCount())
	}

	got, err := os.ReadFile(r.concat)
	if err != nil {
		t.Fatalf("--concat: %v", err)
	}
	if !bytes.Equal(got, joined) {
		t.Errorf("--concat %s: %d bytes sha256 %x, want the initialization section and segments of %s joined: %d bytes sha256 %x",
			r.concat, len(got), sha256.Sum256(got), mainRel, len(joined), sha256.Sum256(joined))
	}
	return media
}

// checkHLSFreshSize checks the --json size_download of a download into an
// empty directory that stored the given bytes of media. Encrypted
// segments are a little longer than the decrypted ones stored, and the
// playlists come on top: what was stored is a floor.
func checkHLSFreshSize(t *testing.T, r hlsRun, media int64) {
	t.Helper()
	if r.json.SizeDownload < media {
		t.Errorf("--json size_download %d < %d bytes of media stored", r.json.SizeDownload, media)
	}
}

// checkHLSVariantAttrs checks that the local master's only variant keeps the
// source's RESOLUTION for v.
func checkHLSVariantAttrs(t *testing.T, top *hlsPlaylist, v peer.HLSVariant) {
	t.Helper()
	if got, want := top.variants[0].attrs["RESOLUTION"], fmt.Sprintf("%dx%d", v.Width, v.Height); got != want {
		t.Errorf("local master: RESOLUTION %q, want %q", got, want)
	}
}

// --- ffmpeg and ffprobe ----------------------------------------------------------

// ffOffline keeps ffmpeg and ffprobe to local files: the hls demuxer would
// otherwise follow any URL a playlist has.
var ffOffline = []string{"-protocol_whitelist", "file"}

func ffprobeDuration(t *testing.T, ffprobe, target string, extra ...string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hlsTimeout)
	defer cancel()
	d, err := peer.ProbeDuration(ctx, ffprobe, target, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// ffprobeVideoSize returns the width and height of the one video stream
// ffprobe finds in a local playlist.
func ffprobeVideoSize(t *testing.T, ffprobe, playlist string) (int, int) {
	t.Helper()
	args := append(slices.Clone(ffOffline), "-v", "error", "-select_streams", "v",
		"-show_streams", "-show_entries", "stream=width,height", "-of", "json", playlist)
	res := runCmd(t, hlsTimeout, ffprobe, args...)
	if res.exitCode != 0 || res.stderr != "" {
		t.Fatalf("ffprobe: %s", res)
	}
	var r struct {
		Streams []struct{ Width, Height int } `json:"streams"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &r); err != nil || len(r.Streams) != 1 {
		t.Fatalf("ffprobe: want one video stream (%v): %s", err, res)
	}
	return r.Streams[0].Width, r.Streams[0].Height
}

// ffDecodeAll decodes every frame of target with ffmpeg and fails the test
// on any error ffmpeg reports.
func ffDecodeAll(t *testing.T, ffmpeg, target string, extra ...string) {
	t.Helper()
	args := append(slices.Clone(extra), "-nostdin", "-v", "error", "-i", target, "-f", "null", "-")
	res := runCmd(t, hlsTimeout, ffmpeg, args...)
	if res.exitCode != 0 || strings.TrimSpace(res.stderr) != "" {
		t.Errorf("decoding %s: %s", target, res)
	}
}

// stopNginxOffline stops nginx and checks that it no longer answers, so that
// what follows reads only local files.
func stopNginxOffline(t *testing.T, ng *nginxServer) {
	t.Helper()
	stopPeer(t, ng.Server)
	c := &http.Client{Timeout: 2 * time.Second}
	if resp, err := c.Get(ng.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("nginx still answers at %s after Stop", ng.URL)
	}
}

func hlsFMP4Kind(k peer.HLSKind) bool {
	return k == peer.HLSFMP4 || k == peer.HLSByteRangeFMP4
}

// --- tests ----------------------------------------------------------------------

// TestHLSDownload downloads each kind of generated stream from nginx with
// `ferry hls` and checks, with nginx stopped, that the download plays on
// its own: ffprobe finds the source's duration in the local playlist,
// ffmpeg decodes it and the --concat file without an error, and every
// stored file holds the source's bytes (decrypted, cut out of byte
// ranges).
func TestHLSDownload(t *testing.T) {
	ffmpeg := needPeer(t, "ffmpeg")
	ffprobe := needPeer(t, "ffprobe")
	for _, kind := range peer.HLSKinds {
		t.Run(string(kind), func(t *testing.T) {
			s := hlsStream(t, ffmpeg, kind)
			ng := startNginx(t, nginxOptions{})
			url := ng.URL + "/" + s.Playlist
			srcDuration := ffprobeDuration(t, ffprobe, url)
			if math.Abs(srcDuration-s.Duration) > 0.01 {
				t.Errorf("ffprobe %s: %.3fs; its EXTINFs add up to %.3fs", url, srcDuration, s.Duration)
			}

			r := runFerryHLS(t, t.TempDir(), url, hlsFMP4Kind(kind))
			t.Logf("ferry hls: %d segments, %d bytes in %.3fs", r.json.Segments, r.json.SizeDownload, r.json.TimeTotal)
			stopNginxOffline(t, ng)

			var v peer.HLSVariant
			if s.Variants != nil {
				v = hlsChosenVariant(t, s, "best")
			}
			checkHLSFreshSize(t, r, checkHLSDownload(t, s, v, r))
			index := filepath.Join(r.out, "index.m3u8")
			local := ffprobeDuration(t, ffprobe, index, ffOffline...)
			if math.Abs(local-srcDuration) > hlsProbeSlack {
				t.Errorf("ffprobe %s: %.3fs, the source %.3fs", index, local, srcDuration)
			}
			if s.Variants != nil {
				if w, h := ffprobeVideoSize(t, ffprobe, index); w != v.Width || h != v.Height {
					t.Errorf("ffprobe %s: %dx%d, want the best variant's %dx%d", index, w, h, v.Width, v.Height)
				}
			}
			ffDecodeAll(t, ffmpeg, index, ffOffline...)
			ffDecodeAll(t, ffmpeg, r.concat)
			d := ffprobeDuration(t, ffprobe, r.concat)
			if math.Abs(d-s.Duration) > hlsConcatSlack {
				t.Errorf("ffprobe %s: %.3fs, the playlist %.3fs", r.concat, d, s.Duration)
			}
			t.Logf("durations: source %.3fs, local playlist %.3fs, --concat %.3fs", srcDuration, local, d)
		})
	}
}

// TestHLSVariant checks that --variant picks the best, the worst and the
// variant by index from a master, with the variants listed highest first
// in one and lowest first in the other.
func TestHLSVariant(t *testing.T) {
	ffmpeg := needPeer(t, "ffmpeg")
	ffprobe := needPeer(t, "ffprobe")
	for _, kind := range []peer.HLSKind{peer.HLSMaster, peer.HLSMasterAudio} {
		t.Run(string(kind), func(t *testing.T) {
			s := hlsStream(t, ffmpeg, kind)
			ng := startNginx(t, nginxOptions{})
			url := ng.URL + "/" + s.Playlist
			for _, choice := range []string{"best", "worst", "1"} {
				t.Run(choice, func(t *testing.T) {
					v := hlsChosenVariant(t, s, choice)
					r := runFerryHLS(t, t.TempDir(), url, false, "--variant", choice)
					checkHLSFreshSize(t, r, checkHLSDownload(t, s, v, r))
					index := filepath.Join(r.out, "index.m3u8")
					if w, h := ffprobeVideoSize(t, ffprobe, index); w != v.Width || h != v.Height {
						t.Errorf("--variant %s: ffprobe finds %dx%d, want %dx%d (%s)", choice, w, h, v.Width, v.Height, v.Playlist)
					}
				})
			}
		})
	}
}

// TestHLSRerun runs `ferry hls` again over a finished download and checks
// that it fetched no segment or initialization section again: nginx sent
// the second run nothing but playlists and keys, and its --json
// size_download is no more than those.
func TestHLSRerun(t *testing.T) {
	ffmpeg := needPeer(t, "ffmpeg")
	needPeer(t, "ffprobe")
	for _, kind := range peer.HLSKinds {
		t.Run(string(kind), func(t *testing.T) {
			s := hlsStream(t, ffmpeg, kind)
			ng := startNginx(t, nginxOptions{})
			url := ng.URL + "/" + s.Playlist
			dir := t.TempDir()
			first := runFerryHLS(t, dir, url, hlsFMP4Kind(kind))
			before := len(ng.AccessLog())

			again := runFerryHLS(t, dir, url, hlsFMP4Kind(kind))
			var v peer.HLSVariant
			if s.Variants != nil {
				v = hlsChosenVariant(t, s, "best")
			}
			checkHLSDownload(t, s, v, again)
			requests := ng.AccessLog()[before:]
			t.Logf("second run: %d requests, --json size_download %d", len(requests), again.json.SizeDownload)
			var refetched []string
			for _, line := range requests {
				p, sent := accessLogRequest(t, line)
				if sent > 0 && !strings.HasSuffix(p, ".m3u8") && (s.Key == "" || p != "/"+s.Key) {
					refetched = append(refetched, line)
				}
			}
			if len(refetched) > 0 {
				t.Errorf("the second run fetched media again:\n%s", strings.Join(refetched, "\n"))
			}
			if limit := hlsPlaylistAndKeyBytes(t, s); again.json.SizeDownload > limit {
				t.Errorf("second run: --json size_download %d > %d bytes of playlists and keys (first run: %d)",
					again.json.SizeDownload, limit, first.json.SizeDownload)
			}
		})
	}
}

// accessLogRequest returns the path of the request in a line of nginx's
// access log and how many body bytes nginx sent for it:
//
//	127.0.0.1 "GET /hls/ts/seg000.ts HTTP/1.1" 200 177660 range="" ...
func accessLogRequest(t *testing.T, line string) (path string, sent int64) {
	t.Helper()
	_, rest, _ := strings.Cut(line, `"`)
	req, rest, _ := strings.Cut(rest, `"`)
	f, g := strings.Fields(req), strings.Fields(rest)
	if len(f) < 2 || len(g) < 2 {
		t.Fatalf("access log line %q", line)
	}
	sent, err := strconv.ParseInt(g[1], 10, 64)
	if err != nil {
		t.Fatalf("access log line %q: %v", line, err)
	}
	return f[1], sent
}

// hlsPlaylistAndKeyBytes is the size of the stream's playlists and key: what
// a run that has every segment already may fetch.
func hlsPlaylistAndKeyBytes(t *testing.T, s *peer.HLSStream) int64 {
	t.Helper()
	var n int64
	keyFile := filepath.Join(dataDir, filepath.FromSlash(s.Key))
	err := filepath.WalkDir(s.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".m3u8" && p != keyFile) {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
