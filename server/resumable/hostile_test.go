package resumable_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store"
)

// tally counts the answers to a barrage of hostile requests and collects
// what went wrong.
type tally struct {
	mu     sync.Mutex
	tried  int
	status map[int]int
	bad    []string
}

func (c *tally) add(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tried++
	if c.status == nil {
		c.status = map[int]int{}
	}
	c.status[code]++
}

func (c *tally) fail(f string, a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bad = append(c.bad, fmt.Sprintf(f, a...))
}

// expect counts r and fails the tally unless its status is one of want.
func (c *tally) expect(what string, r *response, want ...int) {
	c.add(r.StatusCode)
	if !slices.Contains(want, r.StatusCode) {
		c.fail("%s: %d %s, want %v", what, r.StatusCode, r.body, want)
	}
}

// report logs the counts and fails t with the first problems.
func (c *tally) report(t *testing.T, what string) {
	t.Helper()
	t.Logf("%s: %d requests, statuses %v, %d bad", what, c.tried, c.status, len(c.bad))
	for _, b := range c.bad[:min(len(c.bad), 20)] {
		t.Error(b)
	}
}

// checkDir fails the tally for an upload whose data file holds fewer
// bytes than its offset, or whose offset passes its length.
func checkDir(t *testing.T, e *env, c *tally) {
	ids, _ := e.store.List(context.Background())
	for _, id := range ids {
		u, err := e.store.GetUpload(context.Background(), id)
		if err != nil {
			c.fail("GetUpload %s: %v", id, err)
			continue
		}
		info, _ := u.GetInfo(context.Background())
		fi, err := os.Stat(filepath.Join(e.dir, id+".bin"))
		if err != nil || fi.Size() < info.Offset || (!info.SizeIsDeferred && info.Offset > info.Size) || info.Size < 0 {
			c.fail("upload %s inconsistent: %+v, file %v", id, info, err)
		}
	}
}

// hostileValues are field values an attacker tries: numbers at and past
// every edge, wrong types, separators, and long values.
var hostileValues = []string{"", "0", "1", "-1", "+1", "01", " 1", "1 ", "1e3", "0x10", "1.0", "999999999999999", "1000000000000000",
	"999999999999999999", "9223372036854775807", "9223372036854775808", "18446744073709551616", "?1", "?0", "?2", "yes", "true",
	"\x00", "\xff", "a,b", "1, 2", strings.Repeat("9", 1000), "partial", "final;", "final;/files/", "final;x", "sha1 AAAA",
	"sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", "1.0.0", "0.2.2", "application/offset+octet-stream", "application/partial-upload",
	"text/html", "attachment; filename=\"../../x\"", "filename Li4vLi4veA==", "k " + strings.Repeat("A", 20000)}

// 3000 requests with random hostile values in every upload field, on
// every method: no 5xx but 501 and 507, and every upload stays
// consistent.
func TestHostileFields(t *testing.T) {
	e := newEnv(t, false, resumable.Config{MaxSize: 1 << 20, MaxStorage: 64 << 20, CheckpointBytes: 4096})
	var c tally
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"Tus-Resumable", "Upload-Draft-Interop-Version", "Upload-Offset", "Upload-Length", "Upload-Defer-Length",
		"Upload-Complete", "Upload-Incomplete", "Upload-Metadata", "Upload-Concat", "Upload-Checksum", "Content-Type",
		"Content-Disposition", "Content-Digest", "Repr-Digest", "X-HTTP-Method-Override"}
	methods := []string{"POST", "PATCH", "HEAD", "DELETE", "GET", "OPTIONS", "PUT"}
	base := []string{e.create(t, 100), e.create(t, 1<<20), e.partial(t, []byte("abc"), 3)}
	for i := 0; i < 3000; i++ {
		m := methods[rng.IntN(len(methods))]
		url := "/files/"
		if m != "POST" || rng.IntN(3) == 0 {
			url = base[rng.IntN(len(base))]
		}
		var hs []string
		for _, n := range names {
			if rng.IntN(3) == 0 {
				v := hostileValues[rng.IntN(len(hostileValues))]
				if n == "Upload-Concat" && rng.IntN(2) == 0 {
					v = "final;" + base[2] + " " + base[rng.IntN(3)]
				}
				hs = append(hs, n+": "+v)
			}
		}
		body := make([]byte, rng.IntN(3)*rng.IntN(5000))
		req, _ := http.NewRequest(m, e.url+strings.TrimPrefix(url, e.url), bytes.NewReader(body))
		for _, h := range hs {
			k, v, _ := strings.Cut(h, ":")
			if strings.Contains(v, "\x00") {
				continue // the client refuses it
			}
			req.Header.Add(k, strings.TrimSpace(v))
		}
		resp, err := e.client.Do(req)
		if err != nil {
			c.fail("%s %v: %v", m, hs, err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.add(resp.StatusCode)
		if resp.StatusCode >= 500 && resp.StatusCode != 501 && resp.StatusCode != 507 {
			c.fail("%s %s %v: %d", m, url, hs, resp.StatusCode)
		}
	}
	checkDir(t, e, &c)
	c.report(t, "hostile headers")
}

// Many appends at the same offset at once: exactly one wins, and the
// upload holds its bytes and no one else's.
func TestRacingAppendsOneWinner(t *testing.T) {
	e := newEnv(t, false, resumable.Config{})
	var c tally
	for round := range 5 {
		url := e.create(t, 64<<10)
		bodies := make([][]byte, 16)
		var wg sync.WaitGroup
		wins := make(chan int, len(bodies))
		for i := range bodies {
			bodies[i] = ferrytest.Bytes(64<<10, uint64(round*100+i))
			wg.Go(func() {
				o := e.send(context.Background(), "PATCH", url, bytes.NewReader(bodies[i]), tusPatch(0)...)
				c.add(o.status)
				if o.status == 204 {
					wins <- i
				}
			})
		}
		wg.Wait()
		close(wins)
		var won []int
		for w := range wins {
			won = append(won, w)
		}
		got := e.download(t, url)
		if len(won) != 1 || !bytes.Equal(got, bodies[won[0]]) {
			c.fail("round %d: winners %v, stored %d bytes matching winner: %v", round, won, len(got), len(won) == 1 && bytes.Equal(got, bodies[won[0]]))
		}
	}
	c.report(t, "concurrent patches")
}

// Offsets that lie move nothing, and a deferred length is declared once.
func TestLyingOffsetsAndLengths(t *testing.T) {
	e := newEnv(t, false, resumable.Config{})
	var c tally
	url := e.create(t, 1000)
	e.patch(t, url, 0, make([]byte, 100)).expect(t, 204)
	for _, off := range []string{"99", "101", "0", "1000", "-100", "9223372036854775807", "0100", "1e2", "100 "} {
		for _, cl := range []int{0, 901, 1, 900} {
			before := e.do(t, "HEAD", url, nil, tus).Header.Get("Upload-Offset")
			r := e.do(t, "PATCH", url, make([]byte, cl), tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: "+off)
			c.add(r.StatusCode)
			valid := strings.TrimLeft(strings.TrimSpace(off), "0") == strings.TrimLeft(before, "0")
			if r.StatusCode == 204 && !valid {
				c.fail("offset %q accepted at %s", off, before)
			}
			h := e.do(t, "HEAD", url, nil, tus)
			if o := h.Header.Get("Upload-Offset"); !valid && o != before {
				c.fail("offset %q moved the upload from %s to %s", off, before, o)
			}
		}
	}
	// Deferred lengths that change.
	d := e.do(t, "POST", "/files/", nil, tus, "Upload-Defer-Length: 1").expect(t, 201).Header.Get("Location")
	steps := []struct {
		off, length string
		body        int
		want        int
	}{
		{"0", "", 10, 204}, {"10", "5", 0, 400}, {"10", "20", 5, 204}, {"15", "21", 1, 400}, {"15", "20", 6, 413},
		{"15", "", 5, 204}, {"20", "", 1, 413}, {"20", "20", 0, 204},
	}
	for _, s := range steps {
		hs := []string{tus, "Content-Type: application/offset+octet-stream", "Upload-Offset: " + s.off}
		if s.length != "" {
			hs = append(hs, "Upload-Length: "+s.length)
		}
		r := e.do(t, "PATCH", d, make([]byte, s.body), hs...)
		c.add(r.StatusCode)
		if r.StatusCode != s.want {
			c.fail("deferred step %+v: %d", s, r.StatusCode)
		}
	}
	checkDir(t, e, &c)
	c.report(t, "offsets and lengths")
}

// DELETE while appends stream: each is taken over, the upload is gone,
// and every byte it counted against MaxStorage is free again.
func TestDeleteDuringAppendFreesStorage(t *testing.T) {
	const max = 8 << 20
	e := newEnv(t, false, resumable.Config{MaxStorage: max, CheckpointBytes: 64 << 10})
	var c tally
	for round := range 5 {
		url := e.create(t, 4<<20)
		body := newSlowBody()
		done := make(chan outcome, 1)
		go func() { done <- e.send(context.Background(), "PATCH", url, body.pr, tusPatch(0)...) }()
		body.pw.Write(make([]byte, (round+1)*(256<<10))) // returns once the client has taken it
		r := e.do(t, "DELETE", url, nil, tus)
		c.add(r.StatusCode)
		body.pw.Close()
		c.add((<-done).status)
		if r.StatusCode != 204 {
			c.fail("round %d: DELETE %d", round, r.StatusCode)
		}
		if h := e.do(t, "HEAD", url, nil, tus); h.StatusCode != 404 {
			c.fail("round %d: HEAD after DELETE %d", round, h.StatusCode)
		}
	}
	big := e.do(t, "POST", "/files/", nil, tus, fmt.Sprintf("Upload-Length: %d", max-store.RecordBytes))
	c.add(big.StatusCode)
	if big.StatusCode != 201 {
		c.fail("storage not given back after DELETEs during appends: %d %s", big.StatusCode, big.body)
	}
	c.report(t, "delete during append")
}

// Final uploads of finished, unfinished, plain, final and expired uploads,
// made while their partials are appended to.
func TestConcatenationCases(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, false, resumable.Config{Expiry: time.Hour, Now: clk.Now, MaxStorage: 64 << 20})
	var c tally
	check := c.expect
	fin := e.partial(t, []byte("finished"), 8)
	unfin := e.partial(t, []byte("unfinished"), 3)
	plain := e.create(t, 3)
	final := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+fin).expect(t, 201).Header.Get("Location")
	check("final of finished", e.do(t, "HEAD", final, nil, tus), 200)
	check("final of a final", e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+final), 400)
	check("final of plain", e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+plain), 400)
	pend := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+fin+" "+unfin).expect(t, 201).Header.Get("Location")
	check("pending HEAD", e.do(t, "HEAD", pend, nil, tus), 200)
	check("pending GET", e.do(t, "GET", pend, nil), 409)
	check("PATCH a final", e.patch(t, pend, 0, []byte("x")), 403)
	check("draft PATCH a final", e.do(t, "PATCH", pend, "x", "Upload-Draft-Interop-Version: 8", "Upload-Offset: 0", "Upload-Complete: ?1", "Content-Type: application/partial-upload"), 403)
	check("DELETE a final", e.do(t, "DELETE", final, nil, tus), 204)
	// Concurrent appends to the partial while finals are made of it.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			o := e.send(context.Background(), "POST", e.url+"/files/", nil, tus, "Upload-Concat: final;"+fin+" "+unfin)
			c.add(o.status)
			if o.status != 201 {
				c.fail("concurrent final %d: %d", i, o.status)
			}
		})
	}
	wg.Go(func() {
		o := e.send(context.Background(), "PATCH", unfin, strings.NewReader("unfinished"[3:]), tusPatch(3)...)
		c.add(o.status)
	})
	wg.Wait()
	check("pending after", e.do(t, "HEAD", pend, nil, tus), 200)
	if got := string(e.download(t, pend)); got != "finishedunfinished" {
		c.fail("pending final = %q", got)
	}
	// Expired partials.
	old := e.partial(t, []byte("old"), 3)
	clk.Advance(2 * time.Hour)
	check("final of expired", e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+old), 400)
	c.report(t, "concat")
}

// Appends racing for the last room under MaxStorage never pass it
// together, and removing the uploads frees all of it.
func TestStorageContention(t *testing.T) {
	const max = 4 << 20
	e := newEnv(t, false, resumable.Config{MaxStorage: max, CheckpointBytes: 64 << 10})
	var c tally
	for round := range 2 {
		var urls []string
		for range 16 {
			urls = append(urls, e.create(t, 1<<20))
		}
		var wg sync.WaitGroup
		for _, u := range urls {
			wg.Go(func() {
				o := e.send(context.Background(), "PATCH", u, struct{ io.Reader }{bytes.NewReader(make([]byte, 1<<20))}, tusPatch(0)...)
				c.add(o.status)
			})
		}
		wg.Wait()
		if n := storedBytes(t, e.dir); n > max {
			c.fail("round %d: %d bytes on disk past %d", round, n, max)
		}
		_, used, _ := store.MeasureUsage(context.Background(), e.store)
		if used > max {
			c.fail("round %d: %d bytes counted past %d", round, used, max)
		}
		for _, u := range urls {
			e.do(t, "DELETE", u, nil, tus)
		}
		// Everything is free again.
		if r := e.do(t, "POST", "/files/", nil, tus, fmt.Sprintf("Upload-Length: %d", max-store.RecordBytes)); r.StatusCode != 201 {
			c.fail("round %d: room not given back: %d %s", round, r.StatusCode, r.body)
		} else {
			e.do(t, "DELETE", r.Header.Get("Location"), nil, tus)
		}
	}
	c.report(t, "storage race")
}

// The draft's appends with offsets, lengths and completion that do not
// fit the upload, in every interop version.
func TestDraftHostile(t *testing.T) {
	e := newEnv(t, false, resumable.Config{MaxSize: 1 << 20})
	var c tally
	for _, v := range resumable.InteropVersions {
		f := fieldsFor(v)
		check := func(what string, r *response, want ...int) {
			c.expect(fmt.Sprintf("interop %d: %s", v, what), r, want...)
		}
		url := e.do(t, "POST", "/files/", "abc", f.version, f.incomplete, "Upload-Length: 10").expect(t, 201).Header.Get("Location")
		check("offset ahead", e.do(t, "PATCH", url, "x", f.appendHeaders(4, false)...), 409)
		check("offset behind", e.do(t, "PATCH", url, "x", f.appendHeaders(2, false)...), 409)
		check("offset negative", e.do(t, "PATCH", url, "x", f.appendHeaders(-1, false)...), 400)
		check("length changes", e.do(t, "PATCH", url, "x", append(f.appendHeaders(3, false), "Upload-Length: 11")...), 400)
		check("complete short", e.do(t, "PATCH", url, "x", f.appendHeaders(3, true)...), 400)
		check("past length", e.do(t, "PATCH", url, "12345678", f.appendHeaders(3, false)...), 413, 400)
		check("complete", e.do(t, "PATCH", url, "1234567", f.appendHeaders(3, true)...), 204)
		check("after complete", e.do(t, "PATCH", url, "x", f.appendHeaders(10, false)...), 400)
		check("complete again", e.do(t, "PATCH", url, nil, f.appendHeaders(10, true)...), 204)
		check("past max", e.do(t, "POST", "/files/", nil, f.version, f.incomplete, "Upload-Length: 1048577"), 413)
		h := e.do(t, "HEAD", url, nil, f.version)
		check("head", h, 204)
		if h.Header.Get("Upload-Offset") != "10" {
			c.fail("interop %d: offset %q", v, h.Header.Get("Upload-Offset"))
		}
	}
	c.report(t, "draft")
}
