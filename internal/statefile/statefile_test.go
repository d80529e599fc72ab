package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/atomicfile"
)

type state struct {
	N    int      `json:"n"`
	Tags []string `json:"tags"`
}

func TestStores(t *testing.T) {
	dir := t.TempDir()
	for name, s := range map[string]Store[state]{"file": File[state]{Path: filepath.Join(dir, "s.json")}, "mem": NewMem[state](nil)} {
		t.Run(name, func(t *testing.T) {
			if v, err := s.Load(); v != nil || err != nil {
				t.Fatalf("empty Load = %v, %v", v, err)
			}
			in := &state{N: 7, Tags: []string{"a"}}
			if err := s.Save(in); err != nil {
				t.Fatal(err)
			}
			in.Tags[0] = "changed after save"
			v, err := s.Load()
			if err != nil || v.N != 7 || v.Tags[0] != "a" {
				t.Fatalf("Load = %+v, %v", v, err)
			}
			if err := s.Remove(); err != nil {
				t.Fatal(err)
			}
			if v, _ := s.Load(); v != nil {
				t.Fatal("Load after Remove found a value")
			}
			if err := s.Remove(); err != nil {
				t.Fatalf("second Remove: %v", err)
			}
		})
	}
}

func TestFileIgnoresDebris(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(p, []byte("{torn"), 0o644)
	if v, err := (File[state]{Path: p}).Load(); v != nil || err != nil {
		t.Fatalf("Load of a torn file = %v, %v; want nothing", v, err)
	}
}

// A state file is private, and a name that holds a link, a FIFO or a
// device is refused on Load and Save, never followed, read without end,
// waited on or replaced.
func TestFileRefusesWhatFerryDidNotCreate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.json")
	if err := (File[state]{Path: p}).Save(&state{N: 1}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte(`{"n": 666}`), 0o644)
	plant := map[string]func(string) error{
		"symlink":   func(p string) error { return os.Symlink(victim, p) },
		"/dev/zero": func(p string) error { return os.Symlink("/dev/zero", p) },
		"fifo":      func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"dangling":  func(p string) error { return os.Symlink(filepath.Join(dir, "nowhere"), p) },
		"directory": func(p string) error { return os.Mkdir(p, 0o755) },
		"hard link": func(p string) error { return os.Link(victim, p) },
	}
	for what, mk := range plant {
		t.Run(what, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s.ferry")
			if err := mk(p); err != nil {
				t.Fatal(err)
			}
			f := File[state]{Path: p}
			done := make(chan struct{})
			go func() {
				defer close(done)
				if v, err := f.Load(); !errors.Is(err, atomicfile.ErrUnsafe) {
					t.Errorf("Load = %v, %v; want ErrUnsafe", v, err)
				}
				if err := f.Save(&state{N: 2}); what != "hard link" && !errors.Is(err, atomicfile.ErrUnsafe) {
					t.Errorf("Save: %v; want ErrUnsafe", err)
				}
			}()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatal("blocked")
			}
			if b, _ := os.ReadFile(victim); string(b) != `{"n": 666}` {
				t.Errorf("the victim holds %q", b)
			}
			if _, err := os.Lstat(filepath.Join(dir, "nowhere")); err == nil {
				t.Error("a dangling link's target was created")
			}
		})
	}
}

// Remove also clears the temporary files Saves killed before their rename
// left behind.
func TestRemoveClearsKilledSaves(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.ferry")
	f := File[state]{Path: p}
	if err := f.Save(&state{N: 1}); err != nil {
		t.Fatal(err)
	}
	debris := filepath.Join(dir, ".s.ferry.tmp12345")
	os.WriteFile(debris, []byte("{"), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(debris, old, old)
	if err := f.Remove(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %v", entries)
	}
}
