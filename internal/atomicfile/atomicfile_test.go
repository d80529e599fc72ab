package atomicfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withUmask runs f with the process's umask set to mask. Tests that call it
// do not run in parallel: the umask belongs to the whole process.
func withUmask(t *testing.T, mask int, f func()) {
	t.Helper()
	old := syscall.Umask(mask)
	defer syscall.Umask(old)
	f()
}

func mode(t *testing.T, name string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// Files made for the user honour the umask; state files stay private.
func TestPermissionsHonourTheUmask(t *testing.T) {
	dir := t.TempDir()
	withUmask(t, 0o002, func() {
		if err := WriteFile(filepath.Join(dir, "public"), []byte("x"), Public); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(filepath.Join(dir, "private"), []byte("x"), Private); err != nil {
			t.Fatal(err)
		}
		f, err := CreateTempFor(filepath.Join(dir, "joined"), Public)
		if err != nil {
			t.Fatal(err)
		}
		if err := Commit(f, filepath.Join(dir, "joined")); err != nil {
			t.Fatal(err)
		}
	})
	for name, want := range map[string]fs.FileMode{"public": 0o664, "private": 0o600, "joined": 0o664} {
		if got := mode(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
}

// plant makes each kind of thing a hostile user could leave under a name,
// and returns the victim a link points at.
func plant(t *testing.T, dir, name, what string) (victim string) {
	t.Helper()
	p := filepath.Join(dir, name)
	victim = filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	switch what {
	case "symlink":
		err = os.Symlink(victim, p)
	case "dangling symlink":
		err = os.Symlink(filepath.Join(dir, "nowhere"), p)
	case "hardlink":
		err = os.Link(victim, p)
	case "fifo":
		err = syscall.Mkfifo(p, 0o644)
	case "directory":
		err = os.Mkdir(p, 0o755)
	case "link to /dev/zero":
		err = os.Symlink("/dev/zero", p)
	default:
		t.Fatalf("plant %q", what)
	}
	if err != nil {
		t.Fatal(err)
	}
	return victim
}

var planted = []string{"symlink", "dangling symlink", "hardlink", "fifo", "directory", "link to /dev/zero"}

// within fails the test if f has not returned in a minute: a FIFO that
// blocked an open would otherwise hang the suite.
func within(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("blocked")
	}
}

// Open refuses everything but a regular file with one link of this user,
// and touches no link's target.
func TestOpenRefusesWhatFerryDidNotCreate(t *testing.T) {
	for _, what := range planted {
		t.Run(what, func(t *testing.T) {
			dir := t.TempDir()
			victim := plant(t, dir, "f.part", what)
			for _, flag := range []int{os.O_RDWR | os.O_CREATE, os.O_RDONLY} {
				within(t, func() {
					f, err := Open(filepath.Join(dir, "f.part"), flag, Public)
					if err == nil {
						f.Close()
					}
					if !errors.Is(err, ErrUnsafe) {
						t.Errorf("Open(flag %#x): %v, want ErrUnsafe", flag, err)
					}
				})
			}
			if b, _ := os.ReadFile(victim); string(b) != "precious" {
				t.Errorf("the victim holds %q", b)
			}
			if _, err := os.Lstat(filepath.Join(dir, "nowhere")); err == nil {
				t.Error("a dangling link's target was created")
			}
		})
	}
}

// A file of another user is refused: checked as root with a real one, and
// for anyone through the check itself with another user's ID.
func TestOpenRefusesAnotherUsersFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f.part")
	if err := os.WriteFile(name, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(name, fi, os.Geteuid()+1); !errors.Is(err, ErrUnsafe) {
		t.Errorf("check with another euid: %v, want ErrUnsafe", err)
	}
	if os.Geteuid() != 0 {
		return // only root can give a file away; the check above covers the rule
	}
	if err := os.Chown(name, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if f, err := Open(name, os.O_RDWR, 0); !errors.Is(err, ErrUnsafe) {
		if f != nil {
			f.Close()
		}
		t.Errorf("Open of nobody's file as root: %v, want ErrUnsafe", err)
	}
}

// Nothing but a regular file or nothing is renamed over: a link stays a
// link to an untouched target, a FIFO and a directory stay.
func TestWriteFileReplacesOnlyRegularFiles(t *testing.T) {
	for _, what := range planted {
		t.Run(what, func(t *testing.T) {
			dir := t.TempDir()
			victim := plant(t, dir, "state", what)
			before, _ := os.Lstat(filepath.Join(dir, "state"))
			err := WriteFile(filepath.Join(dir, "state"), []byte("new"), Private)
			if what == "hardlink" {
				// A name with other links is a regular file: replacing the
				// name leaves the other link's content alone.
				if err != nil {
					t.Fatal(err)
				}
			} else if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("WriteFile over a %s: %v, want ErrUnsafe", what, err)
			} else {
				after, _ := os.Lstat(filepath.Join(dir, "state"))
				if after.Mode() != before.Mode() {
					t.Errorf("the %s became %v", what, after.Mode())
				}
			}
			if b, _ := os.ReadFile(victim); string(b) != "precious" {
				t.Errorf("the victim holds %q", b)
			}
			assertNoTemps(t, dir)
		})
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "state")
	for _, content := range []string{"one", "two"} {
		if err := WriteFile(name, []byte(content), Private); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(name); string(b) != content {
			t.Errorf("holds %q, want %q", b, content)
		}
	}
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("left a temporary file: %s", e.Name())
		}
	}
}

// ReadFile neither blocks on a FIFO nor reads a device without end.
func TestReadFileBounded(t *testing.T) {
	dir := t.TempDir()
	for i, what := range []string{"fifo", "link to /dev/zero", "symlink"} {
		name := filepath.Join(dir, "state"+strconv.Itoa(i))
		plant(t, dir, filepath.Base(name), what)
		within(t, func() {
			if _, err := ReadFile(name, 1<<20); !errors.Is(err, ErrUnsafe) {
				t.Errorf("ReadFile of a %s: %v, want ErrUnsafe", what, err)
			}
		})
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 100), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(big, 99); err == nil {
		t.Error("ReadFile past its limit succeeded")
	}
	if b, err := ReadFile(big, 100); err != nil || len(b) != 100 {
		t.Errorf("ReadFile at its limit: %d bytes, %v", len(b), err)
	}
}

func TestClassify(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, "dir"), 0o755)
	os.Symlink("dir", filepath.Join(dir, "link-dir"))
	os.Symlink("file", filepath.Join(dir, "link-file"))
	os.Symlink("none", filepath.Join(dir, "link-none"))
	os.Symlink("fifo", filepath.Join(dir, "link-fifo"))
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644)
	tests := []struct {
		name   string
		want   Destination
		unsafe bool
	}{
		{"missing", Missing, false},
		{"file", Regular, false},
		{"dir", Dir, false},
		{"link-dir", Dir, false},
		{"fifo", Stream, false},
		{"link-fifo", Stream, false},
		{"link-file", 0, true},
		{"link-none", 0, true},
	}
	for _, tt := range tests {
		got, err := Classify(filepath.Join(dir, tt.name))
		if tt.unsafe != errors.Is(err, ErrUnsafe) || (!tt.unsafe && (err != nil || got != tt.want)) {
			t.Errorf("Classify(%s) = %v, %v; want %v (unsafe %v)", tt.name, got, err, tt.want, tt.unsafe)
		}
	}
}

// A link or a FIFO another user planted is not a destination: it would
// send the bytes where they chose. Checked as root with real ones, and for
// anyone through the check with another user's ID.
func TestClassifyRefusesAnotherUsersLinkOrFIFO(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "dir"), 0o755)
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644)
	os.Symlink("dir", filepath.Join(dir, "link"))
	for _, name := range []string{"fifo", "link"} {
		if _, err := classify(filepath.Join(dir, name), os.Geteuid()+1); os.Geteuid() != 0 && !errors.Is(err, ErrUnsafe) {
			t.Errorf("%s of this user seen by another: %v, want ErrUnsafe", name, err)
		}
	}
	if os.Geteuid() != 0 {
		return // only root can give a file away; the check above covers the rule
	}
	for _, name := range []string{"fifo", "link"} {
		if err := os.Lchown(filepath.Join(dir, name), 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Classify(filepath.Join(dir, name)); !errors.Is(err, ErrUnsafe) {
			t.Errorf("nobody's %s as root: %v, want ErrUnsafe", name, err)
		}
	}
}

// A FIFO is written in place once its reader comes; without one, the open
// ends with its context.
func TestOpenStream(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- b
	}()
	f, err := OpenStream(context.Background(), fifo)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("through"))
	f.Close()
	if b := <-got; string(b) != "through" {
		t.Errorf("the reader got %q", b)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		f, err := OpenStream(ctx, fifo)
		if f != nil {
			f.Close()
		}
		errc <- err
	}()
	cancel()
	within(t, func() {
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("OpenStream with no reader, cancelled: %v", err)
		}
	})

	if _, err := OpenStream(context.Background(), filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("OpenStream of a missing name succeeded")
	}
	regular := filepath.Join(t.TempDir(), "regular")
	os.WriteFile(regular, []byte("keep"), 0o644)
	if _, err := OpenStream(context.Background(), regular); !errors.Is(err, ErrUnsafe) {
		t.Errorf("OpenStream of a regular file: %v", err)
	}
}

// A cancelled OpenStream returns at once whatever its open does: an open
// that does not return (a device that waits, a FIFO whose reader cannot
// be opened or whose name was swapped) is left to finish, and what it
// opens then is closed, not leaked.
func TestOpenStreamCancelledDuringABlockedOpen(t *testing.T) {
	for _, gone := range []bool{false, true} {
		t.Run(fmt.Sprintf("name gone %v", gone), func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			opening, release := make(chan struct{}), make(chan struct{})
			blockedOpen := func(string) (*os.File, error) {
				close(opening)
				<-release // what a device that waits does, whatever else happens
				return pw, nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				f, err := openStream(ctx, fifo, blockedOpen)
				if f != nil {
					t.Error("a cancelled OpenStream returned a file")
				}
				errc <- err
			}()
			<-opening
			if gone {
				os.Remove(fifo) // no reader can be opened to end the wait
			}
			cancel()
			within(t, func() {
				if err := <-errc; !errors.Is(err, context.Canceled) {
					t.Errorf("OpenStream cancelled during the open: %v", err)
				}
			})
			close(release)
			within(t, func() {
				// The pipe's reader sees its end once the late file is closed.
				if n, err := pr.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Errorf("read %d, %v from a file the open returned late, want it closed", n, err)
				}
			})
		})
	}
}

func TestRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "a[1].ferry")
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{".a[1].ferry.tmp123", ".a[1].ferry.tmp4294967295", ".a[1].ferry.tmpnotdigits", ".b.ferry.tmp123", "a[1].ferry"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
		os.Chtimes(filepath.Join(dir, n), old, old)
	}
	os.WriteFile(filepath.Join(dir, ".a[1].ferry.tmp77"), nil, 0o600) // in flight
	RemoveTemps(name, time.Minute)
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != ".a[1].ferry.tmp77 .a[1].ferry.tmpnotdigits .b.ferry.tmp123 a[1].ferry" {
		t.Errorf("left %q", left)
	}
	RemoveTemps(name, 0) // for a caller that holds the file
	if _, err := os.Lstat(filepath.Join(dir, ".a[1].ferry.tmp77")); err == nil {
		t.Error("RemoveTemps(name, 0) left a young temporary file")
	}
}

// A full disk (here a file size limit, which fails writes the same way and
// needs no privileges) fails WriteFile, keeps the old content and leaves no
// temporary file. The limit is set in a child process: it binds the whole
// process.
func TestWriteFileDiskFull(t *testing.T) {
	if dir := os.Getenv("ATOMICFILE_FULL_DIR"); dir != "" {
		lim := syscall.Rlimit{Cur: 4096, Max: 4096}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			t.Fatal(err)
		}
		err := WriteFile(filepath.Join(dir, "state"), bytes.Repeat([]byte("y"), 64<<10), Private)
		if err == nil {
			t.Fatal("WriteFile past the limit succeeded")
		}
		return
	}
	dir := t.TempDir()
	name := filepath.Join(dir, "state")
	if err := os.WriteFile(name, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFileDiskFull$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_FULL_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(name); string(b) != "old" {
		t.Errorf("after a failed write the file holds %d bytes", len(b))
	}
	assertNoTemps(t, dir)
}

// A name escaped with GlobEscape matches itself and nothing else.
func TestGlobEscape(t *testing.T) {
	for _, name := range []string{"plain", "a*b", "what?", "[x]", `back\slash`, "*?[\\"} {
		pattern := GlobEscape(name)
		if ok, err := filepath.Match(pattern, name); !ok || err != nil {
			t.Errorf("Match(GlobEscape(%q) = %q, %q) = %v, %v; want true", name, pattern, name, ok, err)
		}
		if ok, _ := filepath.Match(pattern, name+"x"); ok {
			t.Errorf("GlobEscape(%q) = %q matches %q", name, pattern, name+"x")
		}
	}
}
