package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// limitEnv names the journal TestOpenUnderLimitChild opens.
const limitEnv = "FERRY_JOURNAL_LIMIT_CHILD"

// limitResult is what the child reports.
type limitResult struct {
	Err     string `json:"err"`
	Damaged bool   `json:"damaged"`
	NoMem   bool   `json:"nomem"` // errors.Is(err, ENOMEM)
}

// TestOpenUnderLimitChild opens a journal with its address space limited
// to a little more than it uses: bbolt's memory map of the journal cannot
// be made. It runs as the child of TestOpenFailureIsNotDamage.
func TestOpenUnderLimitChild(t *testing.T) {
	path := os.Getenv(limitEnv)
	if path == "" {
		t.Skip("only run as the child of TestOpenFailureIsNotDamage")
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &old); err != nil {
		t.Fatal(err)
	}
	// Room for the runtime to go on; far less than the map of the journal.
	limit := syscall.Rlimit{Cur: vmSize(t) + 256<<20, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &limit); err != nil {
		t.Fatal(err)
	}
	j, err := Open(path)
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &old); err != nil {
		t.Fatal(err)
	}
	if err == nil {
		j.Close()
	}
	res := limitResult{Damaged: errors.Is(err, ErrDamaged), NoMem: errors.Is(err, syscall.ENOMEM)}
	if err != nil {
		res.Err = err.Error()
	}
	b, _ := json.Marshal(res)
	fmt.Printf("result %s\n", b)
}

// vmSize is this process's address space in bytes (VmSize).
func vmSize(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmSize in /proc/self/status")
	return 0
}

// A sound journal that bbolt cannot open for want of memory (its map
// refused under an address-space limit) is not damaged: Open fails with
// the cause, and the file stays where it is, as it was, with no damaged
// copy beside it; opened again without the limit, it has all its tasks.
func TestOpenFailureIsNotDamage(t *testing.T) {
	if os.Getenv(limitEnv) != "" {
		t.Skip("in the child")
	}
	sm := writeSample(t, t.TempDir(), 50)
	// Sparse room after the pages in use (bbolt and the check read only
	// those): bbolt maps the whole file, 1 GiB.
	const size = 1 << 30
	if err := os.Truncate(sm.path, size); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenUnderLimitChild$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), limitEnv+"="+sm.path)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var res limitResult
	for l := range strings.Lines(string(out)) {
		if b, ok := strings.CutPrefix(l, "result "); ok {
			if err := json.Unmarshal([]byte(b), &res); err != nil {
				t.Fatal(err)
			}
		}
	}
	switch {
	case res.Err == "":
		t.Fatalf("the journal opened under the limit: no map was refused\n%s", out)
	case res.Damaged:
		t.Errorf("a sound journal bbolt could not map is reported damaged: %s", res.Err)
	case !res.NoMem:
		t.Errorf("Open under the limit: %s, want the cause (ENOMEM)", res.Err)
	}
	f, err := os.Open(sm.path)
	if err != nil {
		t.Fatalf("the journal is no longer in place: %v", err)
	}
	used := make([]byte, len(sm.file))
	_, err = f.ReadAt(used, 0)
	fi, _ := f.Stat()
	f.Close()
	if err != nil || !bytes.Equal(used, sm.file) || fi.Size() != size {
		t.Errorf("the journal was changed (%v)", err)
	}
	if copies, err := DamagedCopies(sm.path); err != nil || len(copies) != 0 {
		t.Errorf("damaged copies: %v %v", copies, err)
	}
	j := open(t, sm.path)
	if !sm.same(t, j, "after the failed open") {
		t.Error("the journal lost tasks")
	}
}
