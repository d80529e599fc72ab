package peer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ffprobe comes with ffmpeg, in Debian's ffmpeg package.
func init() { debianPackages["ffprobe"] = "ffmpeg" }

// HLSKind is a kind of HLS test stream that MakeHLS generates.
type HLSKind string

const (
	// HLSTS is an MPEG-TS VOD media playlist.
	HLSTS HLSKind = "ts"
	// HLSAES is HLSTS encrypted with AES-128 by ffmpeg; its EXT-X-KEY
	// has a random IV attribute and a key URI relative to the playlist.
	HLSAES HLSKind = "aes"
	// HLSAESSeqIV is HLSTS encrypted with AES-128 without an IV
	// attribute, so that each segment's media sequence number, which
	// starts at 7, is its IV (RFC 8216 §5.2). Its key URI is an absolute
	// path: the stream must be served with MakeHLS's root at /.
	HLSAESSeqIV HLSKind = "aes-seq"
	// HLSFMP4 is a fragmented-MP4 media playlist with an EXT-X-MAP.
	HLSFMP4 HLSKind = "fmp4"
	// HLSByteRange is HLSTS as one file, its segments EXT-X-BYTERANGEs.
	HLSByteRange HLSKind = "byterange"
	// HLSByteRangeFMP4 is HLSFMP4 as one file: the EXT-X-MAP and the
	// segments are byte ranges of it.
	HLSByteRangeFMP4 HLSKind = "byterange-fmp4"
	// HLSMaster is a master playlist of three variants with their audio
	// muxed in, highest bandwidth first.
	HLSMaster HLSKind = "master"
	// HLSMasterAudio is a master playlist of three video-only variants,
	// lowest bandwidth first, sharing an audio rendition (EXT-X-MEDIA).
	HLSMasterAudio HLSKind = "master-audio"
	// HLSLong is a TS VOD of about 1.5 Mbit/s for the benchmark: 600
	// seconds make 300 segments. EnsureHLS keeps it between runs.
	HLSLong HLSKind = "long"
	// HLSLongLow is HLSLong at about 0.27 Mbit/s (320x180), the rendition
	// a phone takes on a poor network: segments of about 70 KB.
	HLSLongLow HLSKind = "long-low"
)

// HLSKinds are the kinds the interop suite downloads: all but the long
// benchmark streams.
var HLSKinds = []HLSKind{HLSTS, HLSAES, HLSAESSeqIV, HLSFMP4, HLSByteRange,
	HLSByteRangeFMP4, HLSMaster, HLSMasterAudio}

// HLS encoding parameters: every segment but the last lasts exactly
// hlsSegmentSeconds, as the keyframe interval equals it.
const (
	hlsFPS            = 25
	hlsSegmentSeconds = 2
	hlsKeyFile        = "key.bin"
	hlsKeyInfoFile    = "keyinfo.txt"
)

// HLSStream is a generated HLS stream.
type HLSStream struct {
	Kind HLSKind
	// Dir is the stream's directory, root/hls/<kind>.
	Dir string
	// Playlist is the top-level playlist's URL path relative to root,
	// e.g. "hls/ts/index.m3u8".
	Playlist string
	// Duration is the main media playlist's length in seconds, the sum of
	// its EXTINF durations: what ffprobe reports for Playlist.
	Duration float64
	// Segments is the number of segments of the main media playlist: the
	// Playlist itself or, for a master, its first variant's.
	Segments int
	// Variants are a master's variants in playlist order; nil for a
	// media playlist.
	Variants []HLSVariant
	// Audio is the audio rendition's media playlist relative to root, ""
	// when there is none.
	Audio string
	// Key is the AES-128 key's file relative to root, "" when the
	// stream is not encrypted.
	Key string
	// Args are ffmpeg's arguments, run in the stream's directory.
	Args []string
	// Elapsed is how long ffmpeg took.
	Elapsed time.Duration
}

// HLSVariant is one variant stream of a master playlist.
type HLSVariant struct {
	// Playlist is the variant's media playlist relative to root.
	Playlist      string
	Width, Height int
	// Bitrate is the video bit rate asked of the encoder, in bits per
	// second; the variants' BANDWIDTH attributes are in the same order.
	Bitrate int
}

// hlsSpec says how to encode a kind of stream.
type hlsSpec struct {
	width, height int
	videoBitrate  int // bits per second; 0 leaves x264's default (CRF 23)
	fmp4          bool
	singleFile    bool
	// keyURI, when set, encrypts with AES-128 and is the EXT-X-KEY URI.
	keyURI string
	// seqIV encrypts the segments after ffmpeg, each with its media
	// sequence number as the IV, and leaves the IV out of EXT-X-KEY.
	// ffmpeg's own encryption cannot: without an IV it takes the first
	// segment's sequence number as the IV of all and writes it out.
	seqIV bool
	// startNumber is the first segment's media sequence number.
	startNumber int
	// variants, when set, make a master playlist: one variant per entry,
	// each named by its height.
	variants []HLSVariant
	// audioGroup puts the audio in its own rendition instead of muxing
	// it into each variant.
	audioGroup bool
}

func hlsSpecFor(kind HLSKind) (hlsSpec, error) {
	small := hlsSpec{width: 320, height: 180}
	switch kind {
	case HLSTS:
		return small, nil
	case HLSAES:
		small.keyURI = hlsKeyFile
		return small, nil
	case HLSAESSeqIV:
		small.keyURI, small.seqIV, small.startNumber = "/"+path.Join("hls", string(kind), hlsKeyFile), true, 7
		return small, nil
	case HLSFMP4:
		small.fmp4 = true
		return small, nil
	case HLSByteRange:
		small.singleFile = true
		return small, nil
	case HLSByteRangeFMP4:
		small.fmp4, small.singleFile = true, true
		return small, nil
	case HLSMaster:
		return hlsSpec{variants: hlsLadder(true)}, nil
	case HLSMasterAudio:
		return hlsSpec{variants: hlsLadder(false), audioGroup: true}, nil
	case HLSLong:
		return hlsSpec{width: 640, height: 360, videoBitrate: 1_500_000}, nil
	case HLSLongLow:
		return hlsSpec{width: 320, height: 180, videoBitrate: 200_000}, nil
	}
	return hlsSpec{}, fmt.Errorf("hls: unknown kind %q", kind)
}

// hlsLadder returns three variants of different size and bit rate,
// highest first or lowest first. Neither order has the middle one at
// either end, so that choosing by index differs from best and worst.
func hlsLadder(highFirst bool) []HLSVariant {
	v := []HLSVariant{
		{Width: 320, Height: 180, Bitrate: 200_000},
		{Width: 426, Height: 240, Bitrate: 400_000},
		{Width: 640, Height: 360, Bitrate: 800_000},
	}
	if highFirst {
		slices.Reverse(v)
	}
	return v
}

// playlistName is the top-level playlist's file name.
func (sp hlsSpec) playlistName() string {
	if sp.variants != nil {
		return "master.m3u8"
	}
	return "index.m3u8"
}

// variantDir is the directory of variant v's playlist and segments, the
// name ffmpeg substitutes for %v.
func variantDir(v HLSVariant) string { return fmt.Sprintf("%dp", v.Height) }

// args returns ffmpeg's arguments for a stream of the given length, with
// paths relative to the stream's directory.
func (sp hlsSpec) args(seconds int) []string {
	w, h := sp.width, sp.height
	for _, v := range sp.variants {
		w, h = max(w, v.Width), max(h, v.Height)
	}
	a := []string{"-nostdin", "-hide_banner", "-v", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d:duration=%d", w, h, hlsFPS, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=48000:duration=%d", seconds),
	}
	a = append(a, sp.mapArgs()...)
	gop := strconv.Itoa(hlsFPS * hlsSegmentSeconds)
	a = append(a, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-g", gop, "-keyint_min", gop, "-sc_threshold", "0")
	if b := sp.videoBitrate; b > 0 {
		a = append(a, "-b:v", strconv.Itoa(b), "-maxrate", strconv.Itoa(b), "-bufsize", strconv.Itoa(2*b))
	}
	a = append(a, "-c:a", "aac", "-b:a", "64k",
		"-f", "hls", "-hls_time", strconv.Itoa(hlsSegmentSeconds), "-hls_playlist_type", "vod")
	if sp.keyURI != "" && !sp.seqIV {
		a = append(a, "-hls_key_info_file", hlsKeyInfoFile)
	}
	if sp.startNumber != 0 {
		a = append(a, "-start_number", strconv.Itoa(sp.startNumber))
	}
	ext := "ts"
	if sp.fmp4 {
		ext = "m4s"
		a = append(a, "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4")
	}
	if sp.singleFile {
		if sp.fmp4 {
			ext = "mp4"
		}
		return append(a, "-hls_flags", "single_file", "-hls_segment_filename", "stream."+ext, "index.m3u8")
	}
	if sp.variants != nil {
		return append(a, "-var_stream_map", sp.varStreamMap(), "-master_pl_name", sp.playlistName(),
			"-hls_segment_filename", "%v/seg%03d."+ext, "%v/index.m3u8")
	}
	return append(a, "-hls_segment_filename", "seg%03d."+ext, "index.m3u8")
}

// mapArgs selects the encoder's outputs: one video and one audio, or for
// a master a scaled copy of the video per variant, each with its bit rate,
// and the audio once per variant or once for the rendition.
func (sp hlsSpec) mapArgs() []string {
	if sp.variants == nil {
		return []string{"-map", "0:v", "-map", "1:a"}
	}
	var filter strings.Builder
	fmt.Fprintf(&filter, "[0:v]split=%d", len(sp.variants))
	for i := range sp.variants {
		fmt.Fprintf(&filter, "[s%d]", i)
	}
	var a []string
	for i, v := range sp.variants {
		fmt.Fprintf(&filter, ";[s%d]scale=%d:%d[v%d]", i, v.Width, v.Height, i)
		a = append(a, "-map", fmt.Sprintf("[v%d]", i))
	}
	audios := len(sp.variants)
	if sp.audioGroup {
		audios = 1
	}
	for range audios {
		a = append(a, "-map", "1:a")
	}
	for i, v := range sp.variants {
		a = append(a, fmt.Sprintf("-b:v:%d", i), strconv.Itoa(v.Bitrate))
	}
	return append([]string{"-filter_complex", filter.String()}, a...)
}

// varStreamMap groups the outputs into variants. An audio rendition is
// marked default: without a default, ffmpeg also lists it in the master
// as an audio-only variant (and that would be the "worst" one).
func (sp hlsSpec) varStreamMap() string {
	var groups []string
	if sp.audioGroup {
		groups = append(groups, "a:0,agroup:audio,name:audio,default:yes")
	}
	for i, v := range sp.variants {
		g := fmt.Sprintf("v:%d", i)
		if sp.audioGroup {
			g += ",agroup:audio"
		} else {
			g += fmt.Sprintf(",a:%d", i)
		}
		groups = append(groups, g+",name:"+variantDir(v))
	}
	return strings.Join(groups, " ")
}

// MakeHLS generates a stream of the given kind and length (in seconds)
// with ffmpeg into root/hls/<kind>, replacing what was there. The video is
// testsrc2 at 25 fps in x264 (ultrafast), the audio a 440 Hz sine in AAC.
// ffmpeg runs in a temporary directory next to the stream's, renamed into
// place when it succeeds; ctx bounds it.
func MakeHLS(ctx context.Context, ffmpeg, root string, kind HLSKind, seconds int) (*HLSStream, error) {
	sp, err := hlsSpecFor(kind)
	if err != nil {
		return nil, err
	}
	if seconds <= 0 {
		return nil, fmt.Errorf("hls %s: %d seconds", kind, seconds)
	}
	parent := filepath.Join(root, "hls")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+string(kind)+".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	s := &HLSStream{Kind: kind, Dir: filepath.Join(parent, string(kind)), Args: sp.args(seconds)}
	start := time.Now()
	if err := sp.encode(ctx, ffmpeg, tmp, s.Args); err != nil {
		return nil, fmt.Errorf("hls %s: %w", kind, err)
	}
	s.Elapsed = time.Since(start)
	// MkdirTemp made tmp private; nginx's workers may run as another user.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	os.Remove(s.Dir + ".json")
	if err := os.RemoveAll(s.Dir); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, s.Dir); err != nil {
		return nil, err
	}
	if err := s.describe(sp); err != nil {
		return nil, fmt.Errorf("hls %s: %w", kind, err)
	}
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return nil, err
	}
	return s, os.WriteFile(s.Dir+".json", b, 0o644)
}

// EnsureHLS is MakeHLS for a stream kept between runs: when root/hls
// holds one that ffmpeg made with the same arguments it returns that, and
// made false.
func EnsureHLS(ctx context.Context, ffmpeg, root string, kind HLSKind, seconds int) (s *HLSStream, made bool, err error) {
	sp, err := hlsSpecFor(kind)
	if err != nil {
		return nil, false, err
	}
	dir := filepath.Join(root, "hls", string(kind))
	if b, err := os.ReadFile(dir + ".json"); err == nil {
		var old HLSStream
		if json.Unmarshal(b, &old) == nil && slices.Equal(old.Args, sp.args(seconds)) {
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(old.Playlist))); err == nil {
				old.Dir = dir
				return &old, false, nil
			}
		}
	}
	s, err = MakeHLS(ctx, ffmpeg, root, kind, seconds)
	return s, err == nil, err
}

// encode runs ffmpeg with args in dir. An encrypted stream gets a new
// key, which ffmpeg encrypts with through a key info file (removed after
// it, so that only the key is served) or encryptHLS after it (seqIV).
func (sp hlsSpec) encode(ctx context.Context, ffmpeg, dir string, args []string) error {
	var key []byte
	if sp.keyURI != "" {
		var err error
		if key, err = writeHLSKey(dir, sp.keyURI, !sp.seqIV); err != nil {
			return err
		}
		defer os.Remove(filepath.Join(dir, hlsKeyInfoFile))
	}
	if err := runFFmpeg(ctx, ffmpeg, dir, args); err != nil {
		return err
	}
	if sp.seqIV {
		return encryptHLS(filepath.Join(dir, sp.playlistName()), sp.keyURI, key)
	}
	return nil
}

func runFFmpeg(ctx context.Context, ffmpeg, dir string, args []string) error {
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("ffmpeg %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return nil
}

// writeHLSKey writes a random AES-128 key to dir and, when ffmpeg is to
// encrypt, the key info file of its hls muxer: the key's URI, its path
// and a random IV.
func writeHLSKey(dir, uri string, forFFmpeg bool) ([]byte, error) {
	key := make([]byte, aes.BlockSize)
	rand.Read(key)
	if err := os.WriteFile(filepath.Join(dir, hlsKeyFile), key, 0o644); err != nil {
		return nil, err
	}
	if !forFFmpeg {
		return key, nil
	}
	iv := make([]byte, aes.BlockSize)
	rand.Read(iv)
	info := fmt.Sprintf("%s\n%s\n%x\n", uri, hlsKeyFile, iv)
	return key, os.WriteFile(filepath.Join(dir, hlsKeyInfoFile), []byte(info), 0o644)
}

// encryptHLS encrypts the segments of the media playlist file in place
// with AES-128 (CBC, PKCS#7 padding), each with its media sequence number
// as the IV, and adds an EXT-X-KEY without IV before the first segment.
func encryptHLS(playlist, keyURI string, key []byte) error {
	b, err := os.ReadFile(playlist)
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	var out []string
	seq, keyed := int64(0), false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		if v, ok := strings.CutPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"); ok {
			if seq, err = strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("%s: %q: %w", playlist, line, err)
			}
		}
		if strings.HasPrefix(line, "#EXTINF:") && !keyed {
			out = append(out, fmt.Sprintf("#EXT-X-KEY:METHOD=AES-128,URI=%q", keyURI))
			keyed = true
		}
		if line != "" && !strings.HasPrefix(line, "#") {
			if err := encryptFile(filepath.Join(filepath.Dir(playlist), line), block, seq); err != nil {
				return err
			}
			seq++
		}
		out = append(out, line)
	}
	return os.WriteFile(playlist, []byte(strings.Join(out, "\n")+"\n"), 0o644)
}

// encryptFile encrypts the file at name in place, with the media sequence
// number seq as the IV.
func encryptFile(name string, block cipher.Block, seq int64) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	pad := aes.BlockSize - len(b)%aes.BlockSize
	b = append(b, bytes.Repeat([]byte{byte(pad)}, pad)...)
	iv := make([]byte, aes.BlockSize)
	binary.BigEndian.PutUint64(iv[8:], uint64(seq))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(b, b)
	return os.WriteFile(name, b, 0o644)
}

// describe fills in the fields of s that depend on the playlists ffmpeg
// wrote.
func (s *HLSStream) describe(sp hlsSpec) error {
	rel := path.Join("hls", string(s.Kind))
	s.Playlist = path.Join(rel, sp.playlistName())
	main := s.Playlist
	if sp.variants != nil {
		for _, v := range sp.variants {
			v.Playlist = path.Join(rel, variantDir(v), "index.m3u8")
			s.Variants = append(s.Variants, v)
		}
		main = s.Variants[0].Playlist
	}
	if sp.audioGroup {
		s.Audio = path.Join(rel, "audio", "index.m3u8")
	}
	if sp.keyURI != "" {
		s.Key = path.Join(rel, hlsKeyFile)
	}
	root := filepath.Dir(filepath.Dir(s.Dir))
	var err error
	s.Duration, s.Segments, err = mediaLength(filepath.Join(root, filepath.FromSlash(main)))
	return err
}

// mediaLength returns the sum of a media playlist's EXTINF durations and
// their number.
func mediaLength(playlist string) (seconds float64, segments int, err error) {
	b, err := os.ReadFile(playlist)
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "#EXTINF:")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, ",")
		d, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: EXTINF %q: %w", playlist, v, err)
		}
		seconds += d
		segments++
	}
	if segments == 0 {
		return 0, 0, fmt.Errorf("%s: no segments", playlist)
	}
	return seconds, segments, nil
}

// ProbeDuration returns the duration in seconds that ffprobe reports for
// target (a file or URL), with extraArgs placed before it (input options
// such as -protocol_whitelist). For an HLS playlist ffprobe sums the
// EXTINF durations and opens only the first segments, so whatever it
// reports at level error (a segment or key it could not open) fails the
// probe rather than being lost.
func ProbeDuration(ctx context.Context, ffprobe, target string, extraArgs ...string) (float64, error) {
	args := append([]string{"-v", "error"}, extraArgs...)
	args = append(args, "-show_entries", "format=duration", "-of", "json", target)
	cmd := exec.CommandContext(ctx, ffprobe, args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	invocation := ffprobe + " " + strings.Join(args, " ")
	if err != nil {
		return 0, fmt.Errorf("%s: %w\n%s", invocation, err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		return 0, fmt.Errorf("%s: reported errors:\n%s", invocation, stderr.Bytes())
	}
	var r struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("%s: %w\n%s", invocation, err, out)
	}
	d, err := strconv.ParseFloat(r.Format.Duration, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: no duration: %s", invocation, out)
	}
	return d, nil
}
