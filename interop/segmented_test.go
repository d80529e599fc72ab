//go:build interop

package interop

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/internal/peer"
	"github.com/ferryhq/ferry/internal/segment"
)

// Segmented (multi-connection) downloads against real servers.

const (
	// segKillSize is the file killed and resumed five times (and
	// interrupted once). It shares its fixture with TestGetPeakRSS (same
	// name, same size, same bytes).
	segKillSize    = 1 * GiB
	segKillFixture = "rss-1g.bin"
	// segConns is -x for the kill/resume test.
	segConns = 8
	// segRate is nginx's limit_rate per connection for that test:
	// 1 GiB / (8 x 10 MiB/s) = 12.8 s for an uninterrupted `ferry get -x 8`
	// (12.2 s measured: nginx sends the first sendfile chunk of each
	// request at once, ahead of the rate).
	segRate      = 10 * MiB
	segRateNginx = "10m"
	// segKills is how often one transfer is killed before it may finish.
	segKills = 5
	// ferryCheckpointEvery is how often ferry makes the map of fetched
	// ranges durable (checkpointEvery in internal/download): what a kill
	// may lose per connection is one such window of transfer.
	ferryCheckpointEvery = time.Second
	// ferryMaxRequest is the largest ranged request ferry makes
	// (maxRequest in internal/download); a 1 GiB file over 8 connections
	// is asked for in requests of that size until its last 256 MiB.
	ferryMaxRequest = 16 * MiB
	// killFloor is the least time a run gets before its kill while the
	// rest of the transfer leaves room for it: enough to pass the first
	// checkpoint (at about 1 s), so that most kills have progress to keep.
	killFloor = 1200 * time.Millisecond
	// killMinGain is how long a run must last before its kill to be sure
	// it made a checkpoint: the first comes after one interval, plus the
	// probe and the fsyncs of the .part and the control file, which on a
	// machine busy writing take a while (a 1.3 s run has been seen to end
	// before its first checkpoint was saved).
	killMinGain = 3 * time.Second
)

// testSeed returns FERRY_INTEROP_SEED when set (to replay a failure) and
// otherwise a fresh seed; the caller logs it.
func testSeed(t *testing.T) uint64 {
	if s := os.Getenv("FERRY_INTEROP_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FERRY_INTEROP_SEED=%q: %v", s, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// runAccount is what nginx's access log says about one ferry run.
type runAccount struct {
	heads, gets  int
	sent         int64 // $body_bytes_sent of every request for the file
	inflight     int   // GETs cut short (sent less than their range)
	inflightSize int64 // the sizes of those requests
	inflightSent int64 // what nginx sent of them
}

// accountRun sums the access log entries of one run for urlPath and
// checks that every GET was a ranged 206 inside what the control file
// said was missing when the run started: a run that continues never asks
// again for bytes the map has in place.
func accountRun(t *testing.T, label string, entries []accessEntry, urlPath string, missing []segment.Range) runAccount {
	t.Helper()
	var a runAccount
	bad := 0
	for _, e := range entries {
		if e.path != urlPath {
			continue
		}
		a.sent += e.bytes
		if e.method == "HEAD" {
			a.heads++
			continue
		}
		a.gets++
		switch {
		case !e.ranged:
			t.Errorf("%s: GET without a Range (status %d, %s sent): the segmented download fetched the whole file", label, e.status, mib(e.bytes))
		case e.status != 206:
			t.Errorf("%s: GET %v answered %d, want 206", label, e.rng, e.status)
		case !insideAny(e.rng, missing):
			if bad++; bad <= 3 {
				t.Errorf("%s: asked for bytes %v, which the control file at the start of the run had in place (missing: %s): the run did not continue",
					label, e.rng, fmtRanges(missing))
			}
		}
		if e.ranged && e.bytes < e.rng.Len() {
			a.inflight++
			a.inflightSize += e.rng.Len()
			a.inflightSent += e.bytes
		}
	}
	return a
}

func fmtRanges(rs []segment.Range) string {
	var parts []string
	for i, r := range rs {
		if i == 6 {
			parts = append(parts, fmt.Sprintf("... %d in all", len(rs)))
			break
		}
		parts = append(parts, fmt.Sprintf("[%d,%d)", r.Start, r.End))
	}
	return strings.Join(parts, " ")
}

// TestSegmentedKillResume downloads 1 GiB with `ferry get -x 8` from a
// rate-limited nginx, kills it with SIGKILL five times at random moments
// (seeded; FERRY_INTEROP_SEED replays a run), then lets a sixth run finish.
//
// After each kill it checks that the control file only grew and claims no
// byte that the .part does not hold (compared with the source), and from
// nginx's access log that the run asked only for ranges the control file
// listed as missing when it started. The final run must report
// resumed_from equal to the last checkpoint and produce the right sha-256.
//
// Extra bytes are what nginx sent for the file ($body_bytes_sent summed
// over all runs) minus its size. The bound, per kill: data written after
// the last checkpoint is lost, at most one checkpoint interval per
// connection (segConns x segRate x 1 s), and the requests in flight at
// the kill may have been sent, wholly or in part, without being
// checkpointed (their sizes, read from the log: the requests nginx could
// not finish). The second term also absorbs nginx's send-ahead at the
// start of each request and the time a checkpoint's fsync takes.
func TestSegmentedKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("long test: skipped with -short")
	}
	const size = segKillSize
	src, sum := fixture(t, segKillFixture, size)
	ng := startNginx(t, nginxOptions{limitRate: segRateNginx})
	urlPath := "/slow/" + filepath.Base(src)
	url := ng.URL + urlPath
	out := filepath.Join(t.TempDir(), "out.bin")
	defer os.Remove(out)
	args := []string{"get", "-x", strconv.Itoa(segConns), "--json", url, "-o", out}

	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x5e9))
	t.Logf("seed %d (FERRY_INTEROP_SEED=%d replays the kill points); %s behind limit_rate %s per connection; ferry %s",
		seed, seed, mib(size), segRateNginx, strings.Join(args, " "))

	var (
		logged     int   // access log lines accounted for
		totalSent  int64 // $body_bytes_sent for the file, all runs
		totalBound int64
		lastCkpt   int64
		extras     []string
		started    = time.Now()
	)
	for k := 1; k <= segKills; k++ {
		ctrl, ok := readControl(t, out)
		before := int64(0)
		if ok {
			before = checkpointed(ctrl)
		}
		if before != lastCkpt {
			t.Fatalf("kill %d: the control file says %d bytes in place, but %d after the previous kill", k, before, lastCkpt)
		}
		missing := missingOrAll(ctrl, ok, size)

		// A random point of the time the rest would take at full rate,
		// within its first 10-35% so that five kills fit before the end,
		// but not before killFloor while that is under a quarter of the
		// rest, so that most runs get past a checkpoint. Uniform over that
		// span, the kills fall anywhere in ferry's checkpoint cycle.
		remaining := time.Duration(float64(size-before) / float64(segConns*segRate) * float64(time.Second))
		lo := max(remaining/10, min(killFloor, remaining/4))
		hi := max(remaining*35/100, lo)
		delay := (lo + time.Duration(rng.Float64()*float64(hi-lo))).Round(time.Millisecond)

		p := startBgFerry(t, args...)
		p.killAfter(t, delay)
		waitServerIdle(t, ng.URL, 15*time.Second)
		lines := ng.AccessLog()
		run := accountRun(t, fmt.Sprintf("run %d", k), parseAccessLog(t, lines[logged:]), urlPath, missing)
		logged = len(lines)
		totalSent += run.sent

		ctrlAfter, ok := readControl(t, out)
		if !ok {
			t.Fatalf("kill %d: no control file %s.ferry after the kill", k, filepath.Base(out))
		}
		after := checkpointed(ctrlAfter)
		pc := comparePart(t, out+".part", src, missingOrAll(ctrlAfter, true, size))
		if pc.badDone >= 0 {
			t.Errorf("kill %d: the control file claims byte %d is in place, but the .part differs from the source there", k, pc.badDone)
		}
		if after < before {
			t.Errorf("kill %d: the checkpoint went back from %d to %d bytes", k, before, after)
		}
		if after == before && delay >= killMinGain {
			t.Errorf("kill %d: no checkpoint in %v of downloading: still %d bytes in place", k, delay, after)
		}
		gained := after - before
		extra := run.sent - gained
		bound := int64(segConns*segRate*ferryCheckpointEvery/time.Second) + run.inflightSize
		totalBound += bound
		t.Logf("kill %d after %v (%.0f%% of the %v left): checkpoint %s -> %s (+%s, %d missing ranges); "+
			"nginx sent %s in %d GETs; on disk %s (%s written but not checkpointed); "+
			"%d requests in flight (%s, %s of it sent); extra %s (bound %s)",
			k, delay, 100*delay.Seconds()/remaining.Seconds(), remaining.Round(time.Millisecond),
			mib(before), mib(after), mib(gained), len(ctrlAfter.Missing),
			mib(run.sent), run.gets, mib(pc.written), mib(max(0, pc.written-after)),
			run.inflight, mib(run.inflightSize), mib(run.inflightSent), mib(extra), mib(bound))
		if extra > bound {
			t.Errorf("kill %d: %s fetched and not kept, more than the bound %s (%d conn x %s/s x %v + %s of requests in flight)",
				k, mib(extra), mib(bound), segConns, mib(segRate), ferryCheckpointEvery, mib(run.inflightSize))
		}
		extras = append(extras, mib(extra))
		lastCkpt = after
		if t.Failed() {
			t.FailNow()
		}
	}

	// The sixth run finishes.
	ctrl, ok := readControl(t, out)
	missing := missingOrAll(ctrl, ok, size)
	res := runCmd(t, 3*time.Minute, ferryBin, args...)
	if res.exitCode != 0 {
		t.Fatalf("final run failed: %s", res)
	}
	g := parseGetJSON(t, res)
	waitServerIdle(t, ng.URL, 15*time.Second)
	run := accountRun(t, "final run", parseAccessLog(t, ng.AccessLog()[logged:]), urlPath, missing)
	totalSent += run.sent

	if g.ResumedFrom != lastCkpt {
		t.Errorf("final run: resumed_from %d, but the control file had %d bytes in place", g.ResumedFrom, lastCkpt)
	}
	if lastCkpt > 0 && g.ResumedFrom <= 0 {
		t.Errorf("final run: resumed_from %d: it did not continue", g.ResumedFrom)
	}
	if g.Size != size {
		t.Errorf("final run: size %d, want %d", g.Size, size)
	}
	if g.SHA256 != sum {
		t.Errorf("final run: --json sha256 %q, want %s", g.SHA256, sum)
	}
	assertSameFile(t, out, size, sum)
	for _, leftover := range []string{out + ".part", out + ".ferry"} {
		if _, err := os.Stat(leftover); err == nil {
			t.Errorf("%s still exists after a successful run", filepath.Base(leftover))
		}
	}
	need := size - lastCkpt
	if g.Retries == 0 && (run.sent != need || g.SizeDownload != need) {
		t.Errorf("final run without retries: nginx sent %d bytes and ferry reports size_download %d, want both %d (size - resumed_from)",
			run.sent, g.SizeDownload, need)
	}
	finalExtra := run.sent - need

	extra := totalSent - size
	t.Logf("final run: resumed_from %s, size_download %s, nginx sent %s, connections %d, retries %d, %v",
		mib(g.ResumedFrom), mib(g.SizeDownload), mib(run.sent), g.Connections, g.Retries, res.elapsed.Round(time.Millisecond))
	t.Logf("EXTRA BYTES: nginx sent %d bytes for a %d-byte file over %d runs: %d extra (%s; %.1f%% of the file; %s per kill on average; per kill: %s; final run %s); bound %s; test took %v",
		totalSent, size, segKills+1, extra, mib(extra), 100*float64(extra)/size, mib(extra/segKills),
		strings.Join(extras, ", "), mib(finalExtra), mib(totalBound), time.Since(started).Round(time.Millisecond))
	if extra > totalBound+max(0, finalExtra) {
		t.Errorf("%s fetched more than once, above the bound %s", mib(extra), mib(totalBound))
	}
}

// TestSegmentedInterruptResume interrupts `ferry get -x 8` with SIGINT
// (Ctrl-C) at a random moment (seeded) of a rate-limited download: it must
// exit 130 with an error in its JSON and leave no FILE; a graceful stop
// saves the exact map, so the control file must hold every byte the run
// received (size_download) and nothing the .part lacks; the same command
// run again must continue from there and finish the file.
func TestSegmentedInterruptResume(t *testing.T) {
	if testing.Short() {
		t.Skip("long test: skipped with -short")
	}
	const size = segKillSize
	src, sum := fixture(t, segKillFixture, size)
	ng := startNginx(t, nginxOptions{limitRate: segRateNginx})
	urlPath := "/slow/" + filepath.Base(src)
	out := filepath.Join(t.TempDir(), "out.bin")
	defer os.Remove(out)
	args := []string{"get", "-x", strconv.Itoa(segConns), "--json", ng.URL + urlPath, "-o", out}

	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x1e7))
	delay := (1500*time.Millisecond + time.Duration(rng.Int64N(int64(3*time.Second)))).Round(time.Millisecond)
	t.Logf("seed %d (FERRY_INTEROP_SEED replays it): SIGINT after %v", seed, delay)

	p := startBgFerry(t, args...)
	code := p.signalAfter(t, delay, syscall.SIGINT)
	first := cmdResult{args: append([]string{ferryBin}, args...), stdout: p.stdout.String(), stderr: p.stderr.String(), exitCode: code}
	if code != 130 {
		t.Errorf("exit code %d after SIGINT, want 130: %s", code, first)
	}
	g := parseGetJSON(t, first)
	if g.Error == nil {
		t.Errorf("--json after SIGINT has no error: %s", first.stdout)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s exists after SIGINT", filepath.Base(out))
	}
	if _, err := os.Stat(out + ".part"); err != nil {
		t.Fatalf("after SIGINT: %v; want the .part kept", err)
	}
	ctrl, ok := readControl(t, out)
	if !ok || ctrl.Missing == nil {
		t.Fatalf("after SIGINT: no control file with a map of missing ranges (%+v, %v)", ctrl, ok)
	}
	waitServerIdle(t, ng.URL, 15*time.Second)
	logged := len(ng.AccessLog())
	run := accountRun(t, "interrupted run", parseAccessLog(t, ng.AccessLog()), urlPath, []segment.Range{{Start: 0, End: size}})
	ckpt := checkpointed(ctrl)
	if pc := comparePart(t, out+".part", src, ctrl.Missing); pc.badDone >= 0 {
		t.Errorf("the control file claims byte %d is in place, but the .part differs from the source there", pc.badDone)
	}
	if ckpt != g.SizeDownload {
		t.Errorf("after SIGINT the control file holds %d bytes, but the run reported size_download %d: a graceful stop should save every byte it received",
			ckpt, g.SizeDownload)
	}
	lost := run.sent - ckpt
	t.Logf("interrupted after %v: exit %d, error %s; nginx sent %s, ferry received %s, control file keeps %s: %d bytes not kept; %d requests in flight",
		delay, code, g.Error, mib(run.sent), mib(g.SizeDownload), mib(ckpt), lost, run.inflight)
	if bound := int64(segConns * ferryMaxRequest); lost > bound {
		t.Errorf("%s sent but not kept after a graceful stop, more than %d requests of %s in flight", mib(lost), segConns, mib(ferryMaxRequest))
	}

	res := runCmd(t, 3*time.Minute, ferryBin, args...)
	if res.exitCode != 0 {
		t.Fatalf("resume after SIGINT failed: %s", res)
	}
	g2 := parseGetJSON(t, res)
	waitServerIdle(t, ng.URL, 15*time.Second)
	run2 := accountRun(t, "resume", parseAccessLog(t, ng.AccessLog()[logged:]), urlPath, ctrl.Missing)
	if g2.ResumedFrom != ckpt {
		t.Errorf("resume: resumed_from %d, but the control file had %d bytes in place", g2.ResumedFrom, ckpt)
	}
	if g2.SHA256 != sum {
		t.Errorf("resume: --json sha256 %q, want %s", g2.SHA256, sum)
	}
	assertSameFile(t, out, size, sum)
	if g2.Retries == 0 && run2.sent != size-ckpt {
		t.Errorf("resume without retries: nginx sent %d bytes, want %d (size - resumed_from)", run2.sent, size-ckpt)
	}
	t.Logf("resume: resumed_from %s, size_download %s, nginx sent %s; extra over both runs %d bytes; %v",
		mib(g2.ResumedFrom), mib(g2.SizeDownload), mib(run2.sent), run.sent+run2.sent-size, res.elapsed.Round(time.Millisecond))
}

// TestSegmentedPeakRSS downloads 4 GiB from nginx on loopback, with -x 8
// and with the adaptive default, and checks ferry's peak RSS.
func TestSegmentedPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("long test: skipped with -short")
	}
	const (
		size = 4 * GiB
		need = 10 * GiB // the source, one result at a time, and a margin
	)
	dir := t.TempDir()
	free := freeBytes(t, dir)
	if free < need {
		t.Skipf("!!! SKIPPED: only %.1f GiB free on the filesystem of %s; this test needs %d GiB (a 4 GiB source and a 4 GiB result at a time). "+
			"That is a limit of this machine, not a missing peer: free disk space to run it !!!", float64(free)/GiB, dir, need/GiB)
	}
	name := "rss-4g.bin"
	src := filepath.Join(dir, name)
	start := time.Now()
	sum, err := peer.MakeFile(src, size, fixtureSeed(name))
	defer os.Remove(src)
	if err != nil {
		t.Fatalf("make %s: %v", name, err)
	}
	t.Logf("%.1f GiB free; source %s: %s, sha256 %s, made in %v", float64(free)/GiB, name, mib(size), sum, time.Since(start).Round(time.Millisecond))
	ng := startNginx(t, nginxOptions{root: dir})
	url := ng.URL + "/" + name

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"x8", []string{"-x", "8"}},
		{"adaptive", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.bin")
			defer os.Remove(out)
			before := len(ng.AccessLog())
			args := append(append([]string{"get"}, tc.args...), "-q", url, "-o", out)
			res := runCmd(t, 5*time.Minute, ferryBin, args...)
			if res.exitCode != 0 {
				t.Fatalf("ferry get failed: %s", res)
			}
			rss := res.maxRSS()
			if rss == 0 {
				t.Fatalf("no rusage for the ferry process")
			}
			waitServerIdle(t, ng.URL, 15*time.Second)
			var gets, ranged int
			for _, e := range parseAccessLog(t, ng.AccessLog()[before:]) {
				if e.method == "GET" && e.path == "/"+name {
					gets++
					if e.ranged {
						ranged++
					}
				}
			}
			hashStart := time.Now()
			assertSameFile(t, out, size, sum)
			t.Logf("ferry %s: 4 GiB in %v (%.0f MiB/s), %d GETs (%d ranged), PEAK RSS %.1f MiB (limit %d MiB); sha-256 checked in %v",
				strings.Join(args[:len(args)-3], " "), res.elapsed.Round(time.Millisecond), float64(size)/MiB/res.elapsed.Seconds(),
				gets, ranged, float64(rss)/MiB, peakRSSLimit/MiB, time.Since(hashStart).Round(time.Millisecond))
			if ranged < 2 {
				t.Errorf("%d ranged GETs: the download was not segmented", ranged)
			}
			if rss > peakRSSLimit {
				t.Errorf("peak RSS %.1f MiB > %d MiB for a 4 GiB download", float64(rss)/MiB, peakRSSLimit/MiB)
			}
		})
	}
}

// TestSegmentedFromFerryServe downloads with `ferry get -x 4` from
// `ferry serve`, over HTTP/1.1 and over h2c, and checks from the server's
// request log that the transfer was made of ranged requests.
func TestSegmentedFromFerryServe(t *testing.T) {
	const size = 64 * MiB
	src, sum := fixture(t, "segmented-serve.bin", size)
	name := "/" + filepath.Base(src)
	for _, tc := range []struct {
		name, proto, version string
		flags                []string
	}{
		{"http1.1", "HTTP/1.1", "1.1", nil},
		{"h2c", "HTTP/2.0", "2", []string{"--http2-prior-knowledge"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFerryServe(t, dataDir, false)
			out := filepath.Join(t.TempDir(), "out.bin")
			args := append([]string{"get", "-x", "4", "--json", "-q", srv.URL + name, "-o", out}, tc.flags...)
			res := runCmd(t, 2*time.Minute, ferryBin, args...)
			if res.exitCode != 0 {
				t.Fatalf("ferry get failed: %s", res)
			}
			g := parseGetJSON(t, res)
			assertSameFile(t, out, size, sum)
			if g.SHA256 != sum {
				t.Errorf("--json sha256 %q, want %s", g.SHA256, sum)
			}
			if g.Connections < 1 {
				t.Errorf("--json connections = %d, want >= 1", g.Connections)
			}
			if g.HTTPVersion != tc.version {
				t.Errorf("--json http_version %q, want %q", g.HTTPVersion, tc.version)
			}

			// The server logs a request once it is done: wait (bounded)
			// until the ranged GETs cover the file.
			var reqs []serveRequest
			var rangedBytes int64
			starts := map[int64]bool{}
			remotes := map[string]bool{}
			for deadline := time.Now().Add(10 * time.Second); ; {
				reqs = parseServeLog(srv.Logs())
				rangedBytes = 0
				clear(starts)
				clear(remotes)
				for _, r := range reqs {
					if r.path != name {
						continue
					}
					remotes[r.remote] = true // the probe's too
					if r.method == "GET" && r.ranged {
						rangedBytes += r.bytes
						starts[r.rng.Start] = true
					}
				}
				if rangedBytes >= size || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			var gets, ranged int
			for _, r := range reqs {
				if r.method != "GET" || r.path != name {
					continue
				}
				gets++
				if !r.ranged {
					t.Errorf("GET without a Range (status %d, %d bytes)", r.status, r.bytes)
					continue
				}
				ranged++
				if r.status != 206 {
					t.Errorf("GET range %v answered %d, want 206", r.rng, r.status)
				}
				if r.proto != tc.proto {
					t.Errorf("GET range %v over %s, want %s", r.rng, r.proto, tc.proto)
				}
			}
			t.Logf("%s: ferry serve logged %d GETs, %d with range= (%d distinct starts, %s); requests for the file came over %d TCP connections; --json connections %d, http_version %s; %v",
				tc.name, gets, ranged, len(starts), mib(rangedBytes), len(remotes), g.Connections, g.HTTPVersion, res.elapsed.Round(time.Millisecond))
			if len(starts) < 4 {
				t.Errorf("%d distinct ranged requests; -x 4 should split the file at least four ways", len(starts))
			}
			if rangedBytes < size {
				t.Errorf("the ranged GETs the server logged carried %d bytes, fewer than the file's %d", rangedBytes, size)
			}
			// connections counts the connections that carried a request,
			// not dials: a spare the transport dialled and never used is
			// not one. (Fewer than the server saw is possible: a request
			// cut before its metrics were recorded.)
			if g.Connections > len(remotes) {
				t.Errorf("--json connections %d, but requests for the file came over %d connections", g.Connections, len(remotes))
			}
		})
	}
}

// TestSegmentedIntegrity asks for a sha-256 the file does not have on a
// segmented download: exit 3, an error in the JSON, and nothing left
// under the final name or as a .part.
func TestSegmentedIntegrity(t *testing.T) {
	const size = 32 * MiB
	src, sum := fixture(t, "segmented-integrity.bin", size)
	ng := startNginx(t, nginxOptions{})
	urlPath := "/" + filepath.Base(src)
	out := filepath.Join(t.TempDir(), "out.bin")
	// The right digest with its last hex digit changed.
	wrong := sum[:63] + string("1032547698badcfe"[strings.IndexByte("0123456789abcdef", sum[63])])

	res := runCmd(t, 2*time.Minute, ferryBin, "get", "-x", "4", "--json", "-q", "--checksum", "sha-256="+wrong, ng.URL+urlPath, "-o", out)
	if res.exitCode != 3 {
		t.Errorf("exit code %d with a wrong --checksum, want 3 (integrity): %s", res.exitCode, res)
	}
	g := parseGetJSON(t, res)
	if g.Error == nil || strings.TrimSpace(g.Error.String()) == `""` || g.Error.String() == "null" {
		t.Errorf("--json has no error after a failed integrity check: %s", res.stdout)
	} else {
		t.Logf("--json error: %s", g.Error)
	}
	for _, f := range []string{out, out + ".part", out + ".ferry"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s exists after a failed integrity check", filepath.Base(f))
		}
	}
	waitServerIdle(t, ng.URL, 15*time.Second)
	ranged := 0
	for _, e := range parseAccessLog(t, ng.AccessLog()) {
		if e.method == "GET" && e.path == urlPath && e.ranged {
			ranged++
		}
	}
	if ranged < 4 {
		t.Errorf("%d ranged GETs: the download was not split four ways", ranged)
	}
}

// TestSegmentedKillBeforeFirstMap guards the moment a segmented download
// grows its .part file to full length: the map of missing ranges must be in
// the control file before that, or a kill in between leaves a full-length
// file of zeros that the next run, finding no map, would commit. Each try
// catches the first moment the .part has full length, checks the map is
// already there, kills ferry, and checks the rerun's result.
func TestSegmentedKillBeforeFirstMap(t *testing.T) {
	const size = 64 * MiB
	src, sum := fixture(t, "segmented-serve.bin", size)
	ng := startNginx(t, nginxOptions{limitRate: segRateNginx})
	url := ng.SlowURL + "/" + filepath.Base(src)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.bin")
	args := []string{"get", "-x", "8", "-q", url, "-o", out}

	seen := 0
	for try := 1; try <= 10; try++ {
		for _, f := range []string{out, out + ".part", out + ".ferry"} {
			os.Remove(f)
		}
		p := startBgFerry(t, args...)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			fi, err := os.Stat(out + ".part")
			if err != nil || fi.Size() < size {
				continue
			}
			seen++
			if c, ok := readControl(t, out); !ok || c.Missing == nil {
				p.cmd.Process.Signal(syscall.SIGKILL)
				<-p.done
				t.Fatalf("try %d: the .part has its full length but the control file holds no map", try)
			}
			break
		}
		p.cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("ferry still running 10s after SIGKILL")
		}
		res := runCmd(t, 2*time.Minute, ferryBin, "get", "-x", "8", "--json", "-q", url, "-o", out)
		if res.exitCode != 0 {
			t.Fatalf("try %d: the rerun failed: %s", try, res)
		}
		if got := ferrytest.FileSHA256(t, out); got != sum {
			t.Fatalf("try %d: the rerun committed a file whose sha-256 is %s, want %s\n%s", try, got, sum, res)
		}
	}
	if seen == 0 {
		t.Fatal("never saw the .part at full length: the test did not exercise the moment it guards")
	}
}
