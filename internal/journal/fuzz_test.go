package journal

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryhq/ferry/internal/bgapi"
	bolt "go.etcd.io/bbolt"
)

// FuzzDecodeRecord reads back any stored task and event value: decoding
// never panics, and what decodes is what the journal would store again.
func FuzzDecodeRecord(f *testing.F) {
	sm := writeSample(f, f.TempDir(), 8)
	for _, t := range sm.tasks {
		b, _ := json.Marshal(t)
		f.Add([]byte(t.ID), b)
	}
	f.Add(u64(3), []byte(`{"seq":3,"session":"alpha","task":"t000000000001","type":"done","time":"2026-01-02T03:04:05Z","data":{"result":{"size":1}}}`))
	f.Add([]byte("t000000000001"), []byte(`{"id":"t000000000001","session":"s","kind":"get","request":null,"state":"queued","created":"2026-01-02T03:04:05Z","updated":"2026-01-02T03:04:05Z"}`))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		if tk, err := decodeStored(k, v); err == nil {
			again, err := json.Marshal(tk)
			if err != nil {
				t.Fatalf("a decoded task does not encode: %v", err)
			}
			tk2, err := decodeStored(k, again)
			if err != nil {
				t.Fatalf("a task decoded from %q does not decode once stored again: %v", v, err)
			}
			if b, _ := json.Marshal(tk2); !bytes.Equal(b, again) {
				t.Fatalf("stored again, %q reads back as %q", again, b)
			}
		}
		if e, err := decodeEvent(k, v); err == nil {
			again, _ := json.Marshal(e)
			if e2, err := decodeEvent(k, again); err != nil || e2.Seq != e.Seq || e2.Session != e.Session {
				t.Fatalf("event %q stored again: %+v, %v", v, e2, err)
			}
		}
	})
}

// FuzzJournalFile opens any file as a journal: nothing panics, a file
// Open accepts is one bbolt reads without failing, and Recover makes a
// sound journal of any other.
func FuzzJournalFile(f *testing.F) {
	seed := smallJournal(f)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{})
	dir := fastDir(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "ferry.db")
		for _, p := range append([]string{path}, mustGlob(t, path+"*")...) {
			os.Remove(p)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		j, err := Open(path)
		if err == nil {
			readAll(t, j, "accepted")
			j.Close()
			return
		}
		if _, err := Recover(path); err != nil {
			t.Fatalf("Recover: %v", err)
		}
		j, err = Open(path)
		if err != nil {
			t.Fatalf("Open after Recover: %v", err)
		}
		readAll(t, j, "recovered")
		j.Close()
	})
}

func mustGlob(t *testing.T, pattern string) []string {
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readAll reads everything in j: every read must work.
func readAll(t *testing.T, j *Journal, what string) {
	t.Helper()
	ts, err := j.Tasks("")
	if err != nil {
		t.Fatalf("%s journal: Tasks: %v", what, err)
	}
	if _, err := j.Unfinished(); err != nil {
		t.Fatalf("%s journal: Unfinished: %v", what, err)
	}
	sessions, err := j.Sessions()
	if err != nil {
		t.Fatalf("%s journal: Sessions: %v", what, err)
	}
	for _, s := range sessions {
		if _, err := j.Events(s, 0, 0); err != nil {
			t.Fatalf("%s journal: Events(%q): %v", what, s, err)
		}
		if _, err := j.Tasks(s); err != nil {
			t.Fatalf("%s journal: Tasks(%q): %v", what, s, err)
		}
	}
	for _, tk := range ts {
		if _, _, err := j.Update(tk.ID, nil, &Event{Type: "touched"}); err != nil {
			t.Fatalf("%s journal: Update(%s): %v", what, tk.ID, err)
		}
	}
	if _, _, err := j.Create(&Task{Session: "fuzz", Kind: "get"}); err != nil {
		t.Fatalf("%s journal: Create: %v", what, err)
	}
}

// smallJournal is a journal of a few tasks and events in 1 KiB pages, cut
// to the pages in use: a seed small enough to mutate.
func smallJournal(tb testing.TB) []byte {
	path := filepath.Join(tb.TempDir(), "small.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: 1024})
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.Update(initBuckets); err != nil {
		tb.Fatal(err)
	}
	j := newJournal(db, nil)
	for i, s := range []string{"a", "b", "a", "c"} {
		tk, _, err := j.Create(&Task{Session: s, Kind: "get", Request: json.RawMessage(`{"url":"http://h/f"}`)})
		if err != nil {
			tb.Fatal(err)
		}
		if i%2 == 0 {
			j.Update(tk.ID, setState(bgapi.Done), &Event{Type: "done"})
		}
	}
	j.Ack("a", 1)
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	bf, err := openBoltFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return b[:bf.meta.pgid*bf.meta.pageSize]
}

// fastDir is a temporary directory on tmpfs where there is one: fsync is
// what the fuzzer would spend its time on.
func fastDir(tb testing.TB) string {
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "journal-fuzz-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
