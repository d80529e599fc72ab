package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func init() {
	register(class{"lying", "ferry get against origins that lie: shifted or wrong Content-Range, 200 to a range, ETag changes, gzip on 206, cut bodies, wrong digests, other bytes under the same ETag", attackLying})
	register(class{"links", "ferry get into directories with planted symlinks, hard links, FIFOs and directories at the part, control and final names, and special destinations", attackLinks})
	register(class{"failfast", "permanent failures (unknown host, untrusted certificate, 4xx) and a refused connection", attackFailFast})
	register(class{"creds", "credentials (Authorization, Cookie) and redirects or upload URLs that change origin", attackCreds})
	register(class{"bounds", "counts and sizes past every limit: -x, chunk sizes, HLS playlists of a million segments and sequence numbers at the int64 edge", attackBounds})
	register(class{"kill9", "ferry get and ferry put killed with SIGKILL at random moments, then run again until done", attackKill9})
}

// outcome judges one ferry get: success must mean the right bytes, failure
// must leave nothing under the final name.
func outcome(r *result, res cli, what, out string, good []string, existed bool) {
	switch {
	case r.broke(res, what):
	case res.code == 0:
		got := fileSHA256(out)
		if !slices.Contains(good, got) {
			r.loss("%s: exit 0 with wrong bytes (sha256 %.12s)", what, got)
		}
	default:
		if _, err := os.Lstat(out); err == nil && !existed {
			r.bad("%s: exit %d left %s", what, res.code, filepath.Base(out))
		}
	}
}

func attackLying(ctx context.Context, e *env, r *result) error {
	dir := e.mkdir("lying")
	for i := range e.n(150) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Each origin has one to three kinds of fault, used on a random
		// share of its requests.
		var faults []fault
		for range 1 + e.rng.IntN(3) {
			faults = append(faults, fault(1+e.rng.IntN(int(numFaults)-1)))
		}
		size := 1 + e.rng.IntN(3<<20)
		o := newOrigin(e.rng.Uint64(), size, faults, 1+e.rng.IntN(4))
		out := filepath.Join(dir, fmt.Sprintf("f%d.bin", i))
		args := []string{"get", "-q", o.URL + "/f", "-o", out, "--retry", "3", "--idle-timeout", "5s", "-x", strconv.Itoa(1 + e.rng.IntN(8))}
		r.inputs++
		res := runFerry(ctx, e, dir, 2*time.Minute, nil, args...)
		outcome(r, res, fmt.Sprintf("faults %v", faults), out, o.sums(), false)
		// A rerun of what failed must end right too (resume state is trusted).
		if res.code != 0 && !res.crashed() {
			o.faults = nil
			res = runFerry(ctx, e, dir, 2*time.Minute, nil, args...)
			outcome(r, res, fmt.Sprintf("rerun after faults %v", faults), out, o.sums(), false)
			if res.code != 0 {
				r.bad("rerun after faults %v on an honest origin: exit %d: %s", faults, res.code, tail(res.stderr, 3))
			}
		}
		o.Close()
		os.Remove(out)
	}
	return nil
}

// plant is something an attacker puts at a name before ferry runs.
type plant struct {
	name string
	make func(path, victim string) error
}

var plants = []plant{
	{"symlink to a victim", func(p, v string) error { return os.Symlink(v, p) }},
	{"hard link to a victim", func(p, v string) error { return os.Link(v, p) }},
	{"FIFO", func(p, _ string) error { return syscall.Mkfifo(p, 0o644) }},
	{"directory", func(p, _ string) error { return os.Mkdir(p, 0o755) }},
	{"dangling symlink", func(p, v string) error { return os.Symlink(v+".nothing", p) }},
	{"symlink to a directory", func(p, v string) error { return os.Symlink(filepath.Dir(v), p) }},
}

func attackLinks(ctx context.Context, e *env, r *result) error {
	o := newOrigin(e.rng.Uint64(), 512<<10, nil, 1)
	defer o.Close()
	good := o.sums()[:1]
	base := e.mkdir("links")
	victimDir := filepath.Join(base, "victim")
	os.MkdirAll(victimDir, 0o755)
	for i := range e.n(40) {
		for _, suffix := range []string{".part", ".ferry", ""} {
			for _, p := range plants {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				dir := filepath.Join(base, fmt.Sprintf("%d%s-%s", i, suffix, strings.ReplaceAll(p.name, " ", "-")))
				os.MkdirAll(dir, 0o755)
				victim := filepath.Join(victimDir, filepath.Base(dir))
				canary := []byte("VICTIM " + dir)
				if err := os.WriteFile(victim, canary, 0o644); err != nil {
					return err
				}
				out := filepath.Join(dir, "out.bin")
				if err := p.make(out+suffix, victim); err != nil {
					return err
				}
				what := fmt.Sprintf("%s at out.bin%s", p.name, suffix)
				// A FIFO of the user's own at the destination is a stream
				// the user asked for: read it, as its reader would. The
				// read end is opened first without blocking, so that ferry
				// finds a reader and a ferry that replaces the FIFO does
				// not leave the reader waiting forever.
				var fifo chan string
				var exited atomic.Bool
				if p.name == "FIFO" && suffix == "" {
					f, err := os.OpenFile(out, os.O_RDONLY|syscall.O_NONBLOCK, 0)
					if err != nil {
						return err
					}
					fifo = make(chan string, 1)
					go func() {
						defer f.Close()
						h := sha256.New()
						buf := make([]byte, 64<<10)
						for {
							n, err := f.Read(buf)
							h.Write(buf[:n])
							if err == io.EOF && exited.Load() {
								break // no writer, and ferry is gone
							}
							if err != nil && err != io.EOF {
								break
							}
							if n == 0 {
								time.Sleep(5 * time.Millisecond) // no writer yet
							}
						}
						fifo <- hex.EncodeToString(h.Sum(nil))
					}()
				}
				r.inputs++
				res := runFerry(ctx, e, dir, 20*time.Second, nil, "get", "-q", o.URL+"/f", "-o", out, "--retry", "1")
				exited.Store(true)
				if fifo != nil {
					if got := <-fifo; res.code == 0 && got != good[0] {
						if fi, err := os.Lstat(out); err == nil && fi.Mode().IsRegular() {
							r.escape("%s: the FIFO was replaced by a regular file", what)
						} else {
							r.loss("%s: the FIFO's reader got other bytes", what)
						}
					}
					if res.code == 0 {
						continue // streamed in place, as asked
					}
				}
				switch {
				case r.broke(res, what):
				case res.code == 0:
					if fi, err := os.Lstat(out); err != nil || !fi.Mode().IsRegular() || !slices.Contains(good, fileSHA256(out)) {
						if suffix == "" && (p.name == "directory" || p.name == "symlink to a directory") {
							// A directory destination saves inside it.
							inside := filepath.Join(out, "f")
							if slices.Contains(good, fileSHA256(inside)) {
								break
							}
						}
						r.loss("%s: exit 0 but out.bin is not the download", what)
					}
				}
			}
		}
	}
	// Special destinations: a device and a pipe are written in place. The
	// device is a null device of the suite's own (mknod needs root): a
	// ferry that replaces what it should write to must not break the
	// machine's /dev/null.
	dests := []string{"-"}
	if null := filepath.Join(base, "null"); syscall.Mknod(null, syscall.S_IFCHR|0o666, 1<<8|3) == nil {
		dests = append(dests, null)
	}
	for _, dest := range dests {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.inputs++
		res := runFerry(ctx, e, base, time.Minute, nil, "get", "-q", o.URL+"/f", "-o", dest)
		if res.crashed() || res.code != 0 {
			r.bad("-o %s: exit %d: %s", dest, res.code, tail(res.stderr, 3))
		}
		if fi, err := os.Lstat(dest); dest != "-" && (err != nil || fi.Mode()&os.ModeCharDevice == 0) {
			r.escape("-o a device replaced the device (%v)", err)
		}
		if dest == "-" && sum(res.stdout) != good[0] {
			r.loss("-o -: stdout is not the download (%d bytes)", len(res.stdout))
		}
	}
	// A symlink to /dev/stdout's target, as /dev/stdout itself is.
	stdoutLink := filepath.Join(base, "stdout")
	os.Symlink("/proc/self/fd/1", stdoutLink)
	r.inputs++
	res := runFerry(ctx, e, base, time.Minute, nil, "get", "-q", o.URL+"/f", "-o", stdoutLink)
	if fi, err := os.Lstat(stdoutLink); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		r.escape("-o a link to /proc/self/fd/1 replaced the link (exit %d)", res.code)
	}
	return nil
}

func attackFailFast(ctx context.Context, e *env, r *result) error {
	dir := e.mkdir("failfast")
	statuses := []int{400, 401, 403, 404, 405, 410, 411, 412, 414, 418, 451}
	for i := range e.n(10) {
		for _, st := range statuses {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var n int64
			var mu sync.Mutex
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				mu.Lock()
				n++
				mu.Unlock()
				http.Error(w, "no", st)
			}))
			r.inputs++
			out := filepath.Join(dir, fmt.Sprintf("s%d-%d", i, st))
			res := runFerry(ctx, e, dir, time.Minute, nil, "get", "-q", ts.URL+"/f", "-o", out)
			ts.Close()
			if res.crashed() {
				r.crash("status %d: %s", st, tail(res.stderr, 10))
			} else if res.code != 1 {
				r.bad("status %d: exit %d", st, res.code)
			}
			if n > 2 {
				r.bad("status %d: asked %d times (a permanent status is asked once)", st, n)
			}
		}
	}
	// An untrusted certificate and a name that does not exist: at once.
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "x") }))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // every handshake fails, by design
	tlsSrv.StartTLS()
	var handshakes int64
	var mu sync.Mutex
	tlsSrv.TLS.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		handshakes++
		mu.Unlock()
		return nil, nil
	}
	defer tlsSrv.Close()
	for i := range e.n(5) {
		for _, c := range []struct{ what, url string }{
			{"an untrusted certificate", tlsSrv.URL + "/f"},
			{"a name that does not exist", fmt.Sprintf("http://no-such-host-%d.invalid/f", i)},
		} {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.inputs++
			mu.Lock()
			before := handshakes
			mu.Unlock()
			res := runFerry(ctx, e, dir, 40*time.Second, nil, "get", c.url, "-o", filepath.Join(dir, "t"))
			mu.Lock()
			tries := handshakes - before
			mu.Unlock()
			switch {
			case r.broke(res, c.what):
			case res.code != 1:
				r.bad("%s: exit %d", c.what, res.code)
			case strings.Contains(c.what, "certificate") && tries > 2:
				r.bad("%s: %d handshakes", c.what, tries)
			}
			if strings.Contains(c.what, "certificate") && !strings.Contains(res.stderr, "-k") && !strings.Contains(res.stderr, "--cacert") {
				r.bad("%s: no hint about -k or --cacert: %s", c.what, tail(res.stderr, 2))
			}
		}
	}
	// A refused connection is transient; while ferry waits it says so.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	r.inputs++
	res := runFerry(ctx, e, dir, time.Minute, nil, "get", "http://"+addr+"/f", "-o", filepath.Join(dir, "refused"), "--retry", "2")
	if res.crashed() || res.code != 1 {
		r.bad("a refused connection: exit %d", res.code)
	}
	if !strings.Contains(res.stderr, "waiting for") {
		r.bad("a refused connection: the progress line does not say it is waiting: %s", tail(res.stderr, 3))
	}
	return nil
}

// recorder is an origin that records the credentials it is sent.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newRecorder(h http.HandlerFunc) *recorder {
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		for _, k := range []string{"Authorization", "Cookie", "Proxy-Authorization", "X-Api-Token"} {
			if v := r.Header.Get(k); v != "" {
				rec.seen = append(rec.seen, r.Method+" "+r.URL.Path+" "+k)
			}
		}
		rec.mu.Unlock()
		h(w, r)
	}))
	return rec
}

func (rec *recorder) credentials() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.seen)
}

func attackCreds(ctx context.Context, e *env, r *result) error {
	dir := e.mkdir("creds")
	content := e.randomBytes(300 << 10)
	// B is another origin: it serves the file, takes tus uploads, and
	// records every credential it sees.
	var uploads sync.Map
	b := newRecorder(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPatch || r.Method == http.MethodHead && strings.HasPrefix(r.URL.Path, "/files/"):
			w.Header().Set("Tus-Resumable", "1.0.0")
			n, _ := uploads.LoadOrStore(r.URL.Path, new(int64))
			if r.Method == http.MethodPatch {
				m, _ := io.Copy(io.Discard, r.Body)
				*n.(*int64) += m
			}
			w.Header().Set("Upload-Offset", strconv.FormatInt(*n.(*int64), 10))
			w.Header().Set("Upload-Length", strconv.Itoa(len(content)))
			w.WriteHeader(http.StatusNoContent)
		default:
			http.ServeContent(w, r, "f", time.Time{}, strings.NewReader(string(content)))
		}
	})
	defer b.Close()
	file := filepath.Join(dir, "up.bin")
	os.WriteFile(file, content, 0o644)
	secrets := []string{"-H", "Authorization: Bearer SECRET", "-H", "Cookie: session=SECRET", "-H", "X-Api-Token: SECRET"}
	for i := range e.n(10) {
		for _, code := range []int{301, 302, 303, 307, 308} {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			a := newRecorder(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, b.URL+"/f", code)
			})
			r.inputs++
			out := filepath.Join(dir, fmt.Sprintf("g%d-%d", i, code))
			res := runFerry(ctx, e, dir, time.Minute, nil, append([]string{"get", "-q", a.URL + "/f", "-o", out}, secrets...)...)
			a.Close()
			if res.crashed() {
				r.crash("get through a %d: %s", code, tail(res.stderr, 10))
			}
			outcome(r, res, fmt.Sprintf("get through a %d", code), out, []string{sum(content)}, false)
		}
		// An upload whose creation answers with a Location on B.
		a := newRecorder(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Tus-Resumable", "1.0.0")
			switch r.Method {
			case http.MethodOptions:
				w.Header().Set("Tus-Version", "1.0.0")
				w.Header().Set("Tus-Extension", "creation")
				w.WriteHeader(http.StatusNoContent)
			case http.MethodPost:
				w.Header().Set("Location", fmt.Sprintf("%s/files/u%d", b.URL, i))
				w.WriteHeader(http.StatusCreated)
			default:
				http.Error(w, "no", http.StatusMethodNotAllowed)
			}
		})
		r.inputs++
		res := runFerry(ctx, e, dir, time.Minute, nil, append([]string{"put", "-q", "--protocol", "tus", file, a.URL + "/files/"}, secrets...)...)
		a.Close()
		if res.crashed() {
			r.crash("put to a Location on another origin: %s", tail(res.stderr, 10))
		}
	}
	for _, s := range b.credentials() {
		r.escape("the other origin was sent %s", s)
	}
	return nil
}

func attackBounds(ctx context.Context, e *env, r *result) error {
	dir := e.mkdir("bounds")
	o := newOrigin(1, 64<<10, nil, 1)
	defer o.Close()
	file := filepath.Join(dir, "small.bin")
	os.WriteFile(file, []byte("x"), 0o644)
	usage := [][]string{
		{"get", o.URL + "/f", "-x", "1000000"},
		{"get", o.URL + "/f", "-x", "100000000000000000000"},
		{"get", o.URL + "/f", "-x", "-1"},
		{"get", o.URL + "/f", "--limit-rate", "-5"},
		{"get", o.URL + "/f", "--retry", "-1"},
		{"get", o.URL + "/f", "--idle-timeout", "-1s"},
		{"put", file, o.URL + "/files/", "--connect-timeout", "-5s"},
		{"hls", o.URL + "/p.m3u8", "-o", "h", "-x", "1000000"},
		{"put", file, o.URL + "/files/", "-x", "1000000"},
		{"put", file, o.URL + "/files/", "--chunk-size", "0"},
		{"put", file, o.URL + "/files/", "--chunk-size", "-1"},
	}
	for _, args := range usage {
		for range e.n(2) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.inputs++
			res := runFerry(ctx, e, dir, 30*time.Second, nil, append(args, "-q")...)
			switch {
			case r.broke(res, "ferry "+args[0]+" "+strings.Join(args[2:], " ")):
			case res.code != 2:
				r.bad("ferry %s %s: exit %d, want 2 (usage)", args[0], strings.Join(args[2:], " "), res.code)
			}
		}
	}
	// HLS playlists at the edges.
	huge := func(n int, seq string) string {
		var b strings.Builder
		b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:" + seq + "\n")
		for i := range n {
			// Short names, so that a million fit under the 16 MiB bound
			// on a playlist's bytes and the segment bound is what is met.
			fmt.Fprintf(&b, "#EXTINF:1,\n%x\n", i%4096)
		}
		b.WriteString("#EXT-X-ENDLIST\n")
		return b.String()
	}
	playlists := map[string]string{
		"a million segments":                 huge(1_000_000, "0"),
		"a media sequence at the int64 edge": huge(5, "9223372036854775805"),
		"a negative media sequence":          huge(5, "-1"),
		"a media sequence past int64":        huge(5, "9223372036854775808"),
	}
	seg := e.randomBytes(188)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := playlists[strings.TrimPrefix(r.URL.Path, "/")]; ok {
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			io.WriteString(w, p)
			return
		}
		w.Write(seg)
	}))
	defer hs.Close()
	for name := range playlists {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.inputs++
		out := filepath.Join(dir, "hls-"+strings.ReplaceAll(name, " ", "-"))
		res, rss := runFerryRSS(ctx, e, dir, 3*time.Minute, "hls", "-q", "--json", hs.URL+"/"+strings.ReplaceAll(name, " ", "%20"), "-o", out)
		switch {
		case r.broke(res, "hls of "+name):
		case name == "a million segments":
			if res.code == 0 && rss > 200<<20 {
				r.bad("hls of %s: peak RSS %d MiB (limit 200)", name, rss>>20)
			}
			if res.code != 0 && !strings.Contains(res.stderr, "--") {
				r.bad("hls of %s refused without naming the flag that raises the limit: %s", name, tail(res.stderr, 2))
			}
		default:
			var rep struct {
				Segments int `json:"segments"`
			}
			json.Unmarshal(res.stdout, &rep)
			if res.code == 0 && rep.Segments != 5 {
				r.loss("hls of %s: exit 0 with %d of 5 segments", name, rep.Segments)
			}
			if name != "a negative media sequence" && res.code == 0 && strings.Contains(name, "past") {
				r.bad("hls of %s: accepted", name)
			}
		}
	}
	return nil
}

// runFerryRSS is runFerry that also returns the peak RSS in bytes.
func runFerryRSS(ctx context.Context, e *env, dir string, timeout time.Duration, args ...string) (cli, int64) {
	var rss int64
	res := runFerryWith(ctx, e, dir, timeout, nil, func(ps *os.ProcessState) {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss * 1024
		}
	}, args...)
	return res, rss
}
