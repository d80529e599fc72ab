package journal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/bgapi"
	bolt "go.etcd.io/bbolt"
)

// The figures the daemon cares about, for 10,000 tasks. Run with
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/journal/
//
// Custom metrics: s/10k (time for the 10,000 creates), s-reopen (Open plus
// Unfinished after them), file-MiB and used-MiB (see reportSize). The page
// cache is warm, so reopen times exclude disk reads.

const benchTasks = 10000

func benchTask(i int) *Task {
	return &Task{
		Session:  fmt.Sprintf("session-%d", i%10),
		Kind:     "get",
		Request:  json.RawMessage(fmt.Sprintf(`{"url":"https://example.com/files/%06d.bin","output":"/home/user/Downloads/%06d.bin","segments":4}`, i, i)),
		Priority: i % 3,
	}
}

// reportSize reports the journal's file size, which bbolt grows in steps of
// up to 16 MiB, and the part of it its pages use.
func reportSize(b *testing.B, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	j, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	var used int64
	j.db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
	b.ReportMetric(float64(used)/(1<<20), "used-MiB")
}

// BenchmarkCreate10kSingle creates 10,000 tasks with one transaction (one
// fsync) each, then reopens the journal and lists them as Unfinished.
func BenchmarkCreate10kSingle(b *testing.B) {
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "j.db")
		j, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := range benchTasks {
			if _, _, err := j.Create(benchTask(i)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/10k")
		j.Close()
		reportSize(b, path)

		// A restart on the journal those 10,000 commits left behind.
		start = time.Now()
		if j, err = Open(path); err != nil {
			b.Fatal(err)
		}
		un, err := j.Unfinished()
		if err != nil || len(un) != benchTasks {
			b.Fatalf("Unfinished: %d, %v", len(un), err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-reopen")
		j.Close()
	}
}

// BenchmarkCreate10kBatch creates 10,000 tasks with one CreateMany.
func BenchmarkCreate10kBatch(b *testing.B) {
	ts := make([]*Task, benchTasks)
	for i := range ts {
		ts[i] = benchTask(i)
	}
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "j.db")
		j, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, _, err := j.CreateMany(ts); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/10k")
		j.Close()
		reportSize(b, path)
	}
}

// BenchmarkReopenUnfinished10k measures a daemon restart: open a journal of
// 10,000 tasks (half of them finished) and list the unfinished ones.
func BenchmarkReopenUnfinished10k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "j.db")
	j, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	ts := make([]*Task, benchTasks)
	for i := range ts {
		ts[i] = benchTask(i)
		if i%2 == 1 {
			ts[i].State = bgapi.Done
		}
	}
	if _, _, err := j.CreateMany(ts); err != nil {
		b.Fatal(err)
	}
	j.Close()
	for b.Loop() {
		j, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		un, err := j.Unfinished()
		if err != nil {
			b.Fatal(err)
		}
		if len(un) != benchTasks/2 {
			b.Fatalf("%d unfinished", len(un))
		}
		j.Close()
	}
}

// BenchmarkUpdate is one state change with its event (one fsync).
func BenchmarkUpdate(b *testing.B) {
	j, err := Open(filepath.Join(b.TempDir(), "j.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	tk, _, err := j.Create(benchTask(0))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := j.Update(tk.ID, func(t *Task) error { t.Tries++; return nil }, &Event{Type: "progress"}); err != nil {
			b.Fatal(err)
		}
	}
}
