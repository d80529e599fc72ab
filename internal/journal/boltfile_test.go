package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/bgapi"
	bolt "go.etcd.io/bbolt"
)

// boltModule is bbolt's module path.
const boltModule = "go.etcd.io/bbolt"

// requiredBolt is the bbolt version go.mod requires, and whether go.mod
// replaces it. (A test binary's build information lists no dependencies,
// so go.mod is read.)
func requiredBolt(t *testing.T) (version string, replaced bool) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	var mod []byte
	for {
		mod, err = os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
			t.Fatalf("no go.mod above the test: %v", err)
		}
		dir = filepath.Dir(dir)
	}
	for line := range strings.Lines(string(mod)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "replace" && f[1] == boltModule,
			len(f) >= 2 && f[0] == boltModule && (f[1] == "=>" || len(f) >= 3 && f[2] == "=>"):
			replaced = true
		case len(f) >= 3 && f[0] == "require" && f[1] == boltModule:
			version = f[2]
		case len(f) >= 2 && f[0] == boltModule:
			version = f[1]
		}
	}
	if version == "" {
		t.Fatalf("go.mod does not require %s", boltModule)
	}
	return version, replaced
}

// The reader of bbolt's format in boltfile.go is pinned to the bbolt
// release go.mod requires: a journal written by that bbolt, with every
// kind of page (branch pages, leaf pages with overflow pages, inline
// buckets, a freelist with free pages), is read strictly without a
// problem and says what bbolt says.
func TestBoltFormatPinned(t *testing.T) {
	version, replaced := requiredBolt(t)
	if version != boltRelease || replaced {
		t.Fatalf("go.mod requires %s %s (replaced: %v), but boltfile.go reads the on-disk format of %s: "+
			"review boltfile.go against that release (internal/common: page, meta, bucket, element and "+
			"freelist layouts; DB.Open), then set boltRelease", boltModule, version, replaced, boltRelease)
	}

	sm := writeSample(t, t.TempDir(), 400) // branch pages in the tasks bucket
	j := open(t, sm.path)
	// A record larger than a page: leaf overflow pages.
	big, _, err := j.Create(&Task{Session: "delta", Kind: "put",
		Request: json.RawMessage(fmt.Sprintf(`{"url":"http://example.com/%s"}`, strings.Repeat("x", 20000)))})
	if err != nil {
		t.Fatal(err)
	}
	// Its pages freed, and released by the next write.
	for _, st := range []bgapi.State{bgapi.Done, bgapi.Done} {
		if _, _, err := j.Update(big.ID, setState(st), &Event{Type: string(st)}); err != nil {
			t.Fatal(err)
		}
	}
	var stats bolt.BucketStats
	var free int
	err = j.db.View(func(tx *bolt.Tx) error {
		free = tx.DB().Stats().FreePageN
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			stats.Add(b.Stats())
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats.BranchPageN == 0 || stats.LeafOverflowN == 0 || stats.InlineBucketN == 0 || free == 0 {
		t.Fatalf("the journal lacks a kind of page: %d branch, %d leaf overflow, %d inline buckets, %d free",
			stats.BranchPageN, stats.LeafOverflowN, stats.InlineBucketN, free)
	}
	tasks, err := j.Tasks("")
	if err != nil {
		t.Fatal(err)
	}
	events := map[string][]Event{}
	for _, s := range []string{"alpha", "beta", "gamma", "delta"} {
		if events[s], err = j.Events(s, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()

	f, err := os.Open(sm.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	c, err := readJournal(f, fi.Size())
	if err != nil {
		t.Fatalf("boltfile.go finds a journal bbolt %s wrote damaged: %v", boltRelease, err)
	}
	if len(c.tasks) != len(tasks) {
		t.Fatalf("boltfile.go read %d tasks, bbolt %d", len(c.tasks), len(tasks))
	}
	for _, tk := range tasks {
		if a, b := mustJSON(t, tk), mustJSON(t, c.tasks[tk.ID]); !bytes.Equal(a, b) {
			t.Fatalf("task %s: boltfile.go read\n%s\nbbolt\n%s", tk.ID, b, a)
		}
	}
	for s, evs := range events {
		sc := c.sessions[s]
		if sc == nil || len(sc.events) != len(evs) {
			t.Fatalf("session %s: boltfile.go read %+v, bbolt %d events", s, sc, len(evs))
		}
		for _, e := range evs {
			if a, b := mustJSON(t, e), mustJSON(t, sc.events[e.Seq]); !bytes.Equal(a, b) {
				t.Fatalf("session %s event %d: boltfile.go read\n%s\nbbolt\n%s", s, e.Seq, b, a)
			}
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
