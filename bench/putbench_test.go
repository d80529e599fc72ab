package main

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/peer"
	"github.com/ferryhq/ferry/internal/peer/wan"
)

// The upload store tells the run's files from the server's own, finds the
// file with the upload's bytes, counts what a capped run stored, and
// clears the run's files only.
func TestUploadStore(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	own := write("server.lock", []byte("the server's"))
	s, err := newUploadStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("ferry", 1000))
	src := write("../src.bin", data)
	sum, err := peer.FileSHA256(src)
	if err != nil {
		t.Fatal(err)
	}
	file := testFile{dir: filepath.Dir(src), name: "src.bin", size: int64(len(data)), sum: sum}

	write("files/a.bin", data[:2000])
	write("files/a.info", []byte(`{"size":5000}`))
	if why := s.holds(file); why == "" || !strings.Contains(why, "2000") {
		t.Errorf("holds with a partial upload: %q", why)
	}
	if got := s.stored(file.size); got != 2000 {
		t.Errorf("stored %d, want the data of the partial upload, 2000", got)
	}
	wrong := append([]byte{}, data...)
	wrong[0] ^= 1
	write("files/b.bin", wrong)
	if why := s.holds(file); why == "" {
		t.Error("holds found a file of the right size with other bytes")
	}
	if got := s.stored(1000); got != 1000 {
		t.Errorf("stored %d, want it capped at the upload's size", got)
	}
	write("files/c.bin", data)
	if why := s.holds(file); why != "" {
		t.Errorf("holds with the upload stored: %q", why)
	}
	if err := s.clear(); err != nil {
		t.Fatal(err)
	}
	if files, _ := s.files(); len(files) != 0 {
		t.Errorf("after clear: %v", files)
	}
	if _, err := os.Stat(own); err != nil {
		t.Errorf("clear removed the server's own file: %v", err)
	}
}

// Only upload profiles run in put mode, whatever sizes are given: a
// download profile would run without the link it stands for.
func TestPutProfilesChecked(t *testing.T) {
	for _, args := range [][]string{
		{"-profiles", "capped", "-size", "1MiB"},
		{"-profiles", "capped", "-sizes", "capped=1MiB"},
		{"-profiles", "nosuch", "-size", "1MiB"},
	} {
		fs := flag.NewFlagSet("put", flag.ContinueOnError)
		c := &common{}
		runMode := putFlags(fs, c)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		err := runMode(context.Background())
		if err == nil || !strings.Contains(err.Error(), "unknown upload profile") {
			t.Errorf("%v: %v, want unknown upload profile", args, err)
		}
	}
}

// Upload figures read the link's up direction, and one tool into two
// servers is a figure.
func TestPutFigures(t *testing.T) {
	run := func(tool string, wall time.Duration, up, lost uint64) Run {
		return Run{Tool: tool, Round: 1, Wall: wall, Bytes: 10 << 20,
			Link: &wan.Stats{Up: wan.DirStats{Packets: up, Bytes: up * 1500, Lost: lost}, Down: wan.DirStats{Packets: 1}}}
	}
	profiles := []ProfileResult{
		{Name: "loopback", Origin: "ferry-serve", Upload: true, Size: 10 << 20, Tools: []string{"curl-tus"},
			Runs: []Run{run("curl-tus", time.Second, 100, 1)}},
		{Name: "loopback", Origin: "tusd", Upload: true, Size: 10 << 20, Tools: []string{"curl-tus"},
			Runs: []Run{run("curl-tus", 2*time.Second, 100, 0)}},
	}
	got := track([]Tracked{{Profile: "loopback", Origin: "ferry-serve", Num: "curl-tus", Den: "curl-tus", DenOrigin: "tusd", Target: 1.2}}, profiles)
	if len(got) != 1 || !got[0].OK || got[0].Value != 2 || got[0].Status() != "met" {
		t.Errorf("ferry serve / tusd ingest: %+v", got)
	}
	if st := profiles[0].stats(); st[0].LossPct != 1 {
		t.Errorf("loss %v%%, want the up direction's 1%%", st[0].LossPct)
	}
	var b strings.Builder
	profiles[0].writeMarkdown(&b, "###")
	md := b.String()
	for _, want := range []string{"### Profile `loopback`, server ferry-serve", "Server: "} {
		if !strings.Contains(md, want) {
			t.Errorf("section lacks %q:\n%s", want, md)
		}
	}
}

// The put section goes after the stream section and is kept by a full
// run of get.
func TestPutSectionKept(t *testing.T) {
	rep := &putReport{Command: "go run ./bench put", Runs: 1}
	sec := rep.section()
	if !strings.HasPrefix(sec, putSectionStart+"\n") || !strings.HasSuffix(sec, putSectionEnd+"\n") {
		t.Fatalf("section without its markers:\n%s", sec)
	}
	doc, err := putDocSection.with("# Benchmarks\n\n"+testSection, sec, streamDocSection)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc, testSection+"\n"+sec) {
		t.Errorf("put section not after the stream section:\n%s", doc)
	}
	fresh := testReport().Markdown()
	if got := keepSections(fresh, doc); !strings.Contains(got, sec) {
		t.Errorf("a full run dropped the put section:\n%s", got)
	}
}

// The upload tools' commands; curl-tus creates the upload, resolves a
// relative Location against the endpoint's origin and sends the file in
// one PATCH.
func TestPutToolCommands(t *testing.T) {
	specs := putToolSpecs("/src")
	for _, name := range defaultPutTools {
		if _, ok := specs[name]; !ok {
			t.Errorf("default tool %s has no spec", name)
		}
	}
	argv := specs["tusjs-p4"].argv("node", "http://h/files/", "/f")
	if got := strings.Join(argv, " "); got != "node /src/interop/js/upload.mjs --file /f --endpoint http://h/files/ --parallel 4" {
		t.Errorf("tusjs-p4: %s", got)
	}
	argv = specs["ferry-x4"].argv("ferry", "http://h/files/", "/f")
	if got := strings.Join(argv[4:], " "); !strings.HasPrefix(got, "ferry put -q -x 4 -w") || !strings.HasSuffix(got, "/f http://h/files/") {
		t.Errorf("ferry-x4: %s", got)
	}

	// A stand-in for curl that logs its arguments and answers POST with
	// the Location in $LOC, or fails as curl -f does when $FAIL is set.
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	fake := filepath.Join(dir, "curl")
	script := "#!/bin/sh\necho \"$*\" >>" + log + "\ncase \"$*\" in *'-X POST'*) [ -z \"$FAIL\" ] || exit 22; printf 'HTTP/1.1 201 Created\\r\\nLocation: %s\\r\\n\\r\\n' \"$LOC\";; esac\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ loc, fail, patched string }{
		{loc: "/files/abc", patched: "http://h:1/files/abc"},
		{loc: "abc", patched: "http://h:1/files/abc"},
		{loc: "http://other:2/x/abc", patched: "http://other:2/x/abc"},
		{loc: "/files/abc", fail: "1"},
	} {
		os.Remove(log)
		argv = curlTusArgv(fake, "http://h:1/files/", file)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "LOC="+c.loc, "FAIL="+c.fail)
		out, err := cmd.CombinedOutput()
		calls, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(calls)), "\n")
		if c.fail != "" {
			if err == nil || len(lines) != 1 {
				t.Errorf("a failed POST: err %v, curl ran:\n%s", err, calls)
			}
			continue
		}
		if err != nil {
			t.Fatalf("curl-tus with Location %s: %v\n%s", c.loc, err, out)
		}
		if len(lines) != 2 || !strings.Contains(lines[0], "-X POST") || !strings.Contains(lines[0], "Upload-Length: 5") ||
			!strings.Contains(lines[1], "-X PATCH") || !strings.HasSuffix(lines[1], "-T "+file+" "+c.patched) {
			t.Errorf("curl-tus with Location %s ran:\n%s", c.loc, calls)
		}
	}
}
