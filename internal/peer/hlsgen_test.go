package peer

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// These tests run stand-ins for ffmpeg and ffprobe; interop/hls_test.go
// runs the real ones.

func TestHLSArgs(t *testing.T) {
	for _, kind := range append(slices.Clone(HLSKinds), HLSLong) {
		sp, err := hlsSpecFor(kind)
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Join(sp.args(10), " ")
		for _, want := range []string{"-g 50 -keyint_min 50 -sc_threshold 0", "-hls_time 2 -hls_playlist_type vod", ":duration=10"} {
			if !strings.Contains(args, want) {
				t.Errorf("%s: %q not in %s", kind, want, args)
			}
		}
	}
	if _, err := hlsSpecFor("nope"); err == nil {
		t.Error("unknown kind: no error")
	}
}

func TestHLSVarStreamMap(t *testing.T) {
	for kind, want := range map[HLSKind]string{
		HLSMaster:      "v:0,a:0,name:360p v:1,a:1,name:240p v:2,a:2,name:180p",
		HLSMasterAudio: "a:0,agroup:audio,name:audio,default:yes v:0,agroup:audio,name:180p v:1,agroup:audio,name:240p v:2,agroup:audio,name:360p",
	} {
		sp, _ := hlsSpecFor(kind)
		if got := sp.varStreamMap(); got != want {
			t.Errorf("%s: var_stream_map %q, want %q", kind, got, want)
		}
	}
}

// fakeTool writes an executable shell script named name into dir.
func fakeTool(t *testing.T, dir, name, script string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeFFmpeg writes a two-segment index.m3u8 and its segments where it
// runs, keeps a copy of the key info file, and counts its runs in
// dir/runs.
func fakeFFmpeg(t *testing.T, dir string) string {
	return fakeTool(t, dir, "ffmpeg", `
echo run >>`+filepath.Join(dir, "runs")+`
[ -f keyinfo.txt ] && cp keyinfo.txt keyinfo.seen
printf '#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2.000000,\nseg007.ts\n#EXTINF:1.5,\nseg008.ts\n#EXT-X-ENDLIST\n' >index.m3u8
printf 'segment 7' >seg007.ts
printf 'the 16 bytes of segment 8' >seg008.ts
`)
}

func runs(t *testing.T, dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "runs"))
	return strings.Count(string(b), "run")
}

func TestMakeHLS(t *testing.T) {
	bin, root := t.TempDir(), t.TempDir()
	ffmpeg := fakeFFmpeg(t, bin)
	ctx := context.Background()
	s, err := MakeHLS(ctx, ffmpeg, root, HLSTS, 4)
	if err != nil {
		t.Fatal(err)
	}
	if s.Playlist != "hls/ts/index.m3u8" || s.Dir != filepath.Join(root, "hls", "ts") {
		t.Errorf("playlist %q dir %q", s.Playlist, s.Dir)
	}
	if s.Duration != 3.5 || s.Segments != 2 {
		t.Errorf("duration %v segments %d, want 3.5 and 2", s.Duration, s.Segments)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "hls", ".*")); len(left) > 0 {
		t.Errorf("temporary directories left: %v", left)
	}

	again, made, err := EnsureHLS(ctx, ffmpeg, root, HLSTS, 4)
	if err != nil || made || again.Duration != s.Duration || runs(t, bin) != 1 {
		t.Errorf("EnsureHLS of the same stream: made %v, err %v, %d ffmpeg runs", made, err, runs(t, bin))
	}
	if _, made, err = EnsureHLS(ctx, ffmpeg, root, HLSTS, 6); err != nil || !made || runs(t, bin) != 2 {
		t.Errorf("EnsureHLS of a longer stream: made %v, err %v, %d ffmpeg runs", made, err, runs(t, bin))
	}
}

func TestMakeHLSKeyInfo(t *testing.T) {
	bin, root := t.TempDir(), t.TempDir()
	s, err := MakeHLS(context.Background(), fakeFFmpeg(t, bin), root, HLSAES, 4)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.ReadFile(filepath.Join(s.Dir, "keyinfo.seen"))
	if err != nil {
		t.Fatalf("ffmpeg saw no key info file: %v", err)
	}
	if f := strings.Fields(string(info)); len(f) != 3 || f[0] != "key.bin" || f[1] != "key.bin" || len(f[2]) != 32 {
		t.Errorf("key info %q, want the key's URI, its path and an IV of 32 hex digits", f)
	}
	if key, err := os.ReadFile(filepath.Join(s.Dir, "key.bin")); err != nil || len(key) != 16 {
		t.Errorf("key %x, %v; want 16 bytes", key, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "keyinfo.txt")); err == nil {
		t.Errorf("the key info file is left where it is served")
	}
	if s.Key != "hls/aes/key.bin" {
		t.Errorf("Key %q", s.Key)
	}
}

func TestMakeHLSSeqIV(t *testing.T) {
	bin, root := t.TempDir(), t.TempDir()
	s, err := MakeHLS(context.Background(), fakeFFmpeg(t, bin), root, HLSAESSeqIV, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "keyinfo.seen")); err == nil {
		t.Errorf("ffmpeg was given a key info file: it would encrypt")
	}
	playlist, _ := os.ReadFile(filepath.Join(s.Dir, "index.m3u8"))
	want := "#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-KEY:METHOD=AES-128,URI=\"/hls/aes-seq/key.bin\"\n#EXTINF:2.000000,\nseg007.ts\n"
	if !strings.Contains(string(playlist), want) {
		t.Errorf("playlist:\n%s\nwant it to contain:\n%s", playlist, want)
	}
	key, err := os.ReadFile(filepath.Join(s.Dir, "key.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for seq, plain := range map[int]string{7: "segment 7", 8: "the 16 bytes of segment 8"} {
		b, err := os.ReadFile(filepath.Join(s.Dir, fmt.Sprintf("seg%03d.ts", seq)))
		if err != nil {
			t.Fatal(err)
		}
		if got := decryptCBC(t, key, seq, b); got != plain {
			t.Errorf("segment %d decrypts with its sequence number as IV to %q, want %q", seq, got, plain)
		}
	}
}

// decryptCBC decrypts b with AES-128-CBC and the IV seq, and removes the
// PKCS#7 padding.
func decryptCBC(t *testing.T, key []byte, seq int, b []byte) string {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil || len(b) == 0 || len(b)%aes.BlockSize != 0 {
		t.Fatalf("%d bytes: %v", len(b), err)
	}
	iv := make([]byte, aes.BlockSize)
	binary.BigEndian.PutUint64(iv[8:], uint64(seq))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(b, b)
	pad := int(b[len(b)-1])
	if pad < 1 || pad > aes.BlockSize || !bytes.Equal(b[len(b)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		t.Fatalf("bad padding: %x", b[len(b)-aes.BlockSize:])
	}
	return string(b[:len(b)-pad])
}

func TestMakeHLSFailure(t *testing.T) {
	bin, root := t.TempDir(), t.TempDir()
	ffmpeg := fakeTool(t, bin, "ffmpeg", "echo 'no encoder' >&2; exit 1\n")
	_, err := MakeHLS(context.Background(), ffmpeg, root, HLSTS, 4)
	if err == nil || !strings.Contains(err.Error(), "no encoder") {
		t.Errorf("err %v, want ffmpeg's message", err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "hls")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestProbeDuration(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ok := fakeTool(t, dir, "ok", `echo '{"format": {"duration": "10.026661"}}'`)
	if d, err := ProbeDuration(ctx, ok, "x.m3u8"); err != nil || d != 10.026661 {
		t.Errorf("duration %v, %v", d, err)
	}
	noisy := fakeTool(t, dir, "noisy", `echo '{"format": {"duration": "10"}}'; echo 'Unable to open key file' >&2`)
	if _, err := ProbeDuration(ctx, noisy, "x.m3u8"); err == nil || !strings.Contains(err.Error(), "key file") {
		t.Errorf("errors on stderr: err %v", err)
	}
	none := fakeTool(t, dir, "none", `echo '{"format": {}}'`)
	if _, err := ProbeDuration(ctx, none, "x.m3u8"); err == nil {
		t.Error("no duration: no error")
	}
}

func TestFFprobePackage(t *testing.T) {
	if p := DebianPackage("ffprobe"); p != "ffmpeg" {
		t.Errorf("ffprobe comes with %q, want ffmpeg", p)
	}
}
