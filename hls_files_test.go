package ferry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry"
)

// A link planted in an HLS directory under a segment's name is neither
// taken for the segment (and joined into --concat) nor replaced: the
// download fails, the link's target untouched.
func TestHLSPlantedLinks(t *testing.T) {
	o := newHLSOrigin(t, false)
	o.vod("/v", 3, nil)
	dir := t.TempDir()
	if _, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: dir}); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.ts"))
	if len(segs) != 3 {
		t.Fatalf("segments %v", segs)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	os.Remove(segs[0])
	os.Symlink(victim, segs[0])
	concat := filepath.Join(t.TempDir(), "all.ts")
	_, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: dir, Concat: concat})
	if !errors.Is(err, ferry.ErrUnsafeFile) {
		t.Fatalf("HLS: %v, want ErrUnsafeFile", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("the victim holds %d bytes", len(b))
	}
	if b, _ := os.ReadFile(concat); bytes.Contains(b, []byte("precious")) {
		t.Error("the victim was joined into --concat")
	}
	if fi, err := os.Lstat(segs[0]); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the planted link was replaced: %v", err)
	}
}

// A wrong -o or --concat is found before the first request.
func TestHLSPathsCheckedFirst(t *testing.T) {
	o := newHLSOrigin(t, false)
	o.vod("/v", 2, nil)
	s := mustSession(t, testConfig(false))
	root := t.TempDir()
	file := filepath.Join(root, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	victim := filepath.Join(root, "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	os.Symlink(victim, filepath.Join(root, "link.ts"))
	os.Mkdir(filepath.Join(root, "adir"), 0o755)
	u := o.url + "/v/index.m3u8"
	tests := []struct {
		name string
		req  ferry.HLSRequest
		want error
	}{
		{"dir is a file", ferry.HLSRequest{URL: u, Dir: file}, ferry.ErrInvalidRequest},
		{"dir is a link to a file", ferry.HLSRequest{URL: u, Dir: filepath.Join(root, "link.ts")}, ferry.ErrUnsafeFile},
		{"concat dir missing", ferry.HLSRequest{URL: u, Dir: filepath.Join(root, "out"), Concat: filepath.Join(root, "none", "all.ts")}, ferry.ErrMissingDir},
		{"concat is a link", ferry.HLSRequest{URL: u, Dir: filepath.Join(root, "out"), Concat: filepath.Join(root, "link.ts")}, ferry.ErrUnsafeFile},
		{"concat is a directory", ferry.HLSRequest{URL: u, Dir: filepath.Join(root, "out"), Concat: filepath.Join(root, "adir")}, ferry.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.HLS(context.Background(), tt.req)
			if !errors.Is(err, tt.want) {
				t.Errorf("HLS: %v, want %v", err, tt.want)
			}
		})
	}
	if n := o.total(); n != 0 {
		t.Errorf("%d requests before the refusals", n)
	}
	if _, err := os.Stat(filepath.Join(root, "out")); err == nil {
		t.Error("a refused request made its directory")
	}
}

// --concat to a FIFO is written in place; segments, playlists and the
// joined file honour the umask.
func TestHLSConcatStreamAndPermissions(t *testing.T) {
	o := newHLSOrigin(t, false)
	want := o.vod("/v", 3, nil)
	dir := filepath.Join(t.TempDir(), "show")
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- b
	}()
	old := syscall.Umask(0o002)
	_, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: dir, Concat: fifo})
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, bytes.Join(want, nil)) {
			t.Errorf("the FIFO's reader got %d bytes, want the segments joined", len(b))
		}
	case <-time.After(time.Minute):
		t.Fatal("the FIFO's reader got nothing: was the FIFO replaced?")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 4 {
		t.Errorf("files %v, want the playlist and 3 segments", files)
	}
	for _, name := range files {
		if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o664 {
			t.Errorf("%s: not 0664 (%v)", name, err)
		}
	}

	concat := filepath.Join(t.TempDir(), "all.ts")
	debris := filepath.Join(filepath.Dir(concat), ".all.ts.tmp123") // a killed join's
	os.WriteFile(debris, []byte("torn"), 0o644)
	hourAgo := time.Now().Add(-time.Hour)
	os.Chtimes(debris, hourAgo, hourAgo)
	old = syscall.Umask(0o002)
	_, err = hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: o.url + "/v/index.m3u8", Dir: dir, Concat: concat})
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(concat); err != nil || fi.Mode().Perm() != 0o664 {
		t.Errorf("--concat file: %v, want mode 0664", err)
	}
	if _, err := os.Lstat(debris); err == nil {
		t.Error("a killed join's temporary file is still there")
	}
}

// A playlist that cannot be had leaves no directory behind.
func TestHLSBadPlaylistLeavesNothing(t *testing.T) {
	o := newHLSOrigin(t, false)
	o.put("/bad/index.m3u8", []byte("not a playlist"))
	for _, u := range []string{o.url + "/missing/index.m3u8", o.url + "/bad/index.m3u8"} {
		dir := filepath.Join(t.TempDir(), "show")
		if _, err := hlsDownload(t, testConfig(false), ferry.HLSRequest{URL: u, Dir: dir}); err == nil {
			t.Fatalf("%s: no error", u)
		}
		if _, err := os.Lstat(dir); err == nil {
			t.Errorf("%s: the failed download left %s", u, dir)
		}
	}
}
