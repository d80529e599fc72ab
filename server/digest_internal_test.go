package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// blockingCompute returns a compute function that counts its calls and
// returns sum once release is closed.
func blockingCompute(calls *atomic.Int64, release <-chan struct{}, sum string) digestCompute {
	return func(ctx context.Context) ([]byte, bool, error) {
		calls.Add(1)
		select {
		case <-release:
			return []byte(sum), true, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

func TestDigestCacheSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const waiters = 32
		c := newDigestCache(t.Context(), 8)
		key := digestKey{"f", `"1"`, "sha-256"}
		var calls atomic.Int64
		release := make(chan struct{})
		compute := blockingCompute(&calls, release, "sum")

		results := make(chan string, waiters)
		for range waiters {
			go func() {
				sum, err := c.get(t.Context(), key, compute)
				if err != nil {
					t.Error(err)
				}
				results <- string(sum)
			}()
		}
		synctest.Wait() // every waiter is blocked on the one computation
		if got := calls.Load(); got != 1 {
			t.Fatalf("computations while %d requests wait = %d, want 1", waiters, got)
		}
		close(release)
		for range waiters {
			if got := <-results; got != "sum" {
				t.Errorf("get = %q, want %q", got, "sum")
			}
		}

		if sum, err := c.get(t.Context(), key, compute); err != nil || string(sum) != "sum" {
			t.Errorf("cached get = %q, %v", sum, err)
		}
		if got := c.hashes.Load(); got != 1 {
			t.Errorf("hashes = %d after a cached get, want 1", got)
		}
	})
}

func TestDigestCacheWaiterGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newDigestCache(t.Context(), 8)
		key := digestKey{"f", `"1"`, "sha-256"}
		var calls atomic.Int64
		release := make(chan struct{})
		compute := blockingCompute(&calls, release, "sum")

		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := c.get(ctx, key, compute)
			errc <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("get after its ctx is cancelled = %v, want context.Canceled", err)
		}

		// The computation goes on for the next request.
		close(release)
		synctest.Wait()
		if sum, err := c.get(t.Context(), key, compute); err != nil || string(sum) != "sum" {
			t.Errorf("get = %q, %v; want the computed sum", sum, err)
		}
		if got := calls.Load(); got != 1 {
			t.Errorf("computations = %d, want 1", got)
		}
	})
}

// TestDigestCacheBoundsComputations checks that requests for more files
// than may be hashed at once get no digest instead of starting more
// passes: HEAD requests with Want-Repr-Digest for many big files must not
// make the server read them all at the same time.
func TestDigestCacheBoundsComputations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newDigestCache(t.Context(), 8)
		var calls atomic.Int64
		release := make(chan struct{})
		compute := blockingCompute(&calls, release, "sum")
		for i := range maxDigestFlights {
			go c.get(t.Context(), digestKey{fmt.Sprint(i), `"1"`, "sha-256"}, compute)
		}
		synctest.Wait()
		if _, err := c.get(t.Context(), digestKey{"one more", `"1"`, "sha-256"}, compute); !errors.Is(err, errDigestBusy) {
			t.Errorf("get of one file more than may be hashed at once = %v, want errDigestBusy", err)
		}
		if got := calls.Load(); got != maxDigestFlights {
			t.Errorf("computations = %d, want %d", got, maxDigestFlights)
		}
		// A file being hashed already is waited for, not refused.
		done := make(chan error, 1)
		go func() {
			_, err := c.get(t.Context(), digestKey{"0", `"1"`, "sha-256"}, compute)
			done <- err
		}()
		synctest.Wait()
		close(release)
		if err := <-done; err != nil {
			t.Errorf("get of a file being hashed = %v, want its sum", err)
		}
		synctest.Wait()
		if sum, err := c.get(t.Context(), digestKey{"one more", `"1"`, "sha-256"}, compute); err != nil || string(sum) != "sum" {
			t.Errorf("get once the others are done = %q, %v", sum, err)
		}
	})
}

func TestDigestCacheErrorsNotCached(t *testing.T) {
	c := newDigestCache(t.Context(), 8)
	key := digestKey{"f", `"1"`, "sha-256"}
	boom := errors.New("boom")
	if _, err := c.get(t.Context(), key, func(context.Context) ([]byte, bool, error) { return nil, false, boom }); err != boom {
		t.Fatalf("get = %v, want %v", err, boom)
	}
	sum, err := c.get(t.Context(), key, func(context.Context) ([]byte, bool, error) { return []byte("ok"), true, nil })
	if err != nil || string(sum) != "ok" {
		t.Errorf("get after a failure = %q, %v; want a new computation", sum, err)
	}
	if got := c.hashes.Load(); got != 2 {
		t.Errorf("hashes = %d, want 2", got)
	}
}

func TestDigestCacheKeepsOnlyWhatItMay(t *testing.T) {
	c := newDigestCache(t.Context(), 8)
	key := digestKey{"f", `"1"`, "sha-256"}
	fresh := func(context.Context) ([]byte, bool, error) { return []byte("fresh"), false, nil }
	for i := range 2 {
		if sum, err := c.get(t.Context(), key, fresh); err != nil || string(sum) != "fresh" {
			t.Fatalf("get %d = %q, %v; want the sum, served though not kept", i, sum, err)
		}
	}
	if got := c.hashes.Load(); got != 2 {
		t.Errorf("computations of a sum not to keep = %d, want 2 (one per request)", got)
	}
}

// TestHashFileRacy checks that a digest of a file changed within racyWindow
// of the hash is served but not kept, and one of an older change is kept.
func TestHashFileRacy(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("fresh"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(filepath.Join(root, "f"))
	if err != nil {
		t.Fatal(err)
	}
	changed := time.Unix(0, changeTime(fi))
	for _, c := range []struct {
		now  time.Time
		keep bool
	}{
		{changed, false},
		{changed.Add(racyWindow), false},
		{changed.Add(racyWindow + 1), true},
		{changed.Add(time.Hour), true},
	} {
		s.now = func() time.Time { return c.now }
		sum, keep, err := s.hashFile(t.Context(), "f", fileETag(fi), digestAlgs[0])
		if err != nil || len(sum) != sha256.Size || keep != c.keep {
			t.Errorf("hash started %v after the change: %x, keep %v, %v; want keep %v", c.now.Sub(changed), sum, keep, err, c.keep)
		}
	}
}

func TestDigestCacheEvicts(t *testing.T) {
	c := newDigestCache(t.Context(), 2)
	compute := func(context.Context) ([]byte, bool, error) { return []byte("x"), true, nil }
	get := func(path string) {
		t.Helper()
		if _, err := c.get(t.Context(), digestKey{path, `"1"`, "sha-256"}, compute); err != nil {
			t.Fatal(err)
		}
	}
	get("a")
	get("b")
	get("a") // a is now the most recent
	get("c") // evicts b
	if got := c.hashes.Load(); got != 3 {
		t.Fatalf("hashes = %d, want 3", got)
	}
	get("a")
	get("c")
	if got := c.hashes.Load(); got != 3 {
		t.Errorf("hashes = %d after hits, want 3", got)
	}
	get("b")
	if got := c.hashes.Load(); got != 4 {
		t.Errorf("hashes = %d after the evicted key, want 4", got)
	}
	if c.lru.Len() != 2 || len(c.entries) != 2 {
		t.Errorf("cache holds %d entries (%d indexed), want 2", c.lru.Len(), len(c.entries))
	}
}

func TestHashFile(t *testing.T) {
	root := t.TempDir()
	data := []byte("some bytes to hash, more than nothing")
	p := filepath.Join(root, "f")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	etag := fileETag(fi)
	sha := digestAlgs[0]

	sum, _, err := s.hashFile(t.Context(), "f", etag, sha)
	if want := sha256.Sum256(data); err != nil || string(sum) != string(want[:]) {
		t.Errorf("hashFile = %x, %v; want %x", sum, err, want)
	}
	if _, _, err := s.hashFile(t.Context(), "f", `"stale"`, sha); !errors.Is(err, errDigestFileChange) {
		t.Errorf("hashFile with a stale ETag = %v, want %v", err, errDigestFileChange)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := s.hashFile(ctx, "f", etag, sha); !errors.Is(err, context.Canceled) {
		t.Errorf("hashFile with a cancelled ctx = %v, want context.Canceled", err)
	}
}

// A digest is read through the open that serves files, so it reads only
// what GET may: no work file, no dot file, nothing in a state directory.
func TestHashFileOpensAsServed(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"x.part", ".env"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("secret"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"x.part", ".env"} {
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if sum, _, err := s.hashFile(t.Context(), name, fileETag(fi), digestAlgs[0]); err == nil {
			t.Errorf("hashFile(%s) = %x; want it refused as GET refuses it", name, sum)
		}
	}
}
