package resumable_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/ferrytest"
	"github.com/ferryhq/ferry/server/resumable"
	"github.com/ferryhq/ferry/server/store/memstore"
)

// partial creates a tus partial upload of data and appends the first n
// bytes.
func (e *env) partial(t *testing.T, data []byte, n int) string {
	t.Helper()
	url := e.create(t, len(data), "Upload-Concat: partial")
	if n > 0 {
		e.patch(t, url, 0, data[:n]).expect(t, 204)
	}
	return url
}

func TestConcatenation(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		a, b, c := ferrytest.Bytes(100000, 30), ferrytest.Bytes(1, 31), ferrytest.Bytes(65536, 32)
		urls := []string{e.partial(t, a, len(a)), e.partial(t, b, len(b)), e.partial(t, c, len(c))}
		e.do(t, "HEAD", urls[0], nil, tus).expect(t, 200).header(t, "Upload-Concat", "partial")

		// Paths work as well as absolute URLs.
		rel := strings.TrimPrefix(urls[1], e.url)
		r := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+urls[0]+" "+rel+" "+urls[2]).expect(t, 201)
		final := r.Header.Get("Location")
		want := append(append(append([]byte{}, a...), b...), c...)
		h := e.do(t, "HEAD", final, nil, tus).expect(t, 200)
		h.header(t, "Upload-Offset", strconv.Itoa(len(want)))
		h.header(t, "Upload-Length", strconv.Itoa(len(want)))
		h.header(t, "Upload-Concat", "final;"+strings.Join(urls, " "))
		mustEqual(t, "final upload", e.download(t, final), want)
		// A final upload takes no content; partials can be reused.
		e.patch(t, final, len(want), []byte("x")).expect(t, 403)
		e.do(t, "POST", "/files/", "x", tus, "Upload-Concat: final;"+urls[0], "Content-Type: application/offset+octet-stream").expect(t, 403)
		r = e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+urls[2]+" "+urls[0]).expect(t, 201)
		mustEqual(t, "second final upload", e.download(t, r.Header.Get("Location")), append(append([]byte{}, c...), a...))

		// Only partial uploads of this server can be concatenated.
		plain := e.create(t, 3)
		e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+plain).expect(t, 400).problem(t)
		e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+e.url+"/files/0123456789abcdef0123456789abcdef").expect(t, 400).problem(t)
	})
}

// The final upload can be created before its partials are finished
// (concatenation-unfinished): it has no offset until they are, and is
// complete as soon as the last one is.
func TestConcatenationUnfinished(t *testing.T) {
	run(t, resumable.Config{}, func(t *testing.T, e *env) {
		a, b := ferrytest.Bytes(70000, 33), ferrytest.Bytes(50000, 34)
		ua, ub := e.partial(t, a, 30000), e.partial(t, b, 0)
		final := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+ua+" "+ub).expect(t, 201).Header.Get("Location")
		h := e.do(t, "HEAD", final, nil, tus).expect(t, 200)
		h.header(t, "Upload-Offset", "")
		h.header(t, "Upload-Length", "120000")
		e.do(t, "GET", final, nil).expect(t, 409)

		e.patch(t, ua, 30000, a[30000:]).expect(t, 204)
		e.do(t, "HEAD", final, nil, tus).expect(t, 200).header(t, "Upload-Offset", "")
		e.patch(t, ub, 0, b).expect(t, 204)
		e.do(t, "HEAD", final, nil, tus).expect(t, 200).header(t, "Upload-Offset", "120000")
		mustEqual(t, "final upload", e.download(t, final), append(append([]byte{}, a...), b...))
	})
}

// A restarted server no longer knows which final uploads wait for which
// partials; it completes them when asked about them.
func TestConcatenationAfterRestart(t *testing.T) {
	e := newEnv(t, false, resumable.Config{})
	a, b := ferrytest.Bytes(1000, 35), ferrytest.Bytes(2000, 36)
	ua, ub := e.partial(t, a, 1000), e.partial(t, b, 500)
	final := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+ua+" "+ub).expect(t, 201).Header.Get("Location")

	h2, err := resumable.New(resumable.Config{Store: e.store})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	mux := http.NewServeMux()
	mux.Handle("/files/", h2)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	old := e.url
	move := func(u string) string { return ts.URL + strings.TrimPrefix(u, old) }
	e.url = ts.URL
	e.patch(t, move(ub), 500, b[500:]).expect(t, 204)
	e.do(t, "HEAD", move(final), nil, tus).expect(t, 200).header(t, "Upload-Offset", "3000")
	mustEqual(t, "final upload", e.download(t, move(final)), append(append([]byte{}, a...), b...))
}

// tus-js-client sends Upload-Concat in its draft modes too when uploading
// in parallel; the draft dialect accepts it.
func TestConcatenationDraft(t *testing.T) {
	e := newEnv(t, false, resumable.Config{})
	f := fieldsFor(6)
	a, b := ferrytest.Bytes(3000, 37), ferrytest.Bytes(4000, 38)
	var urls []string
	for _, p := range [][]byte{a, b} {
		r := e.do(t, "POST", "/files/", nil, f.version, f.incomplete, "Upload-Concat: partial", "Upload-Length: "+strconv.Itoa(len(p))).expect(t, 201)
		urls = append(urls, r.Header.Get("Location"))
		e.do(t, "PATCH", urls[len(urls)-1], p, f.appendHeaders(0, true)...).expect(t, 204)
	}
	r := e.do(t, "POST", "/files/", nil, f.version, "Upload-Concat: final;"+strings.Join(urls, " ")).expect(t, 201)
	r.header(t, "Upload-Complete", "?1")
	mustEqual(t, "final upload", e.download(t, r.Header.Get("Location")), append(append([]byte{}, a...), b...))
}

// deferredPartial creates a tus partial upload whose length is deferred.
func (e *env) deferredPartial(t *testing.T) string {
	t.Helper()
	return e.do(t, "POST", "/files/", nil, tus, "Upload-Defer-Length: 1", "Upload-Concat: partial").expect(t, 201).Header.Get("Location")
}

// A final upload cannot make more of its partial uploads than they are: it
// names each one once, at most MaxPartials of them, and their sum is held
// to MaxSize whenever it becomes known.
func TestConcatenationLimits(t *testing.T) {
	run(t, resumable.Config{MaxSize: 1 << 20, MaxPartials: 4}, func(t *testing.T, e *env) {
		p := e.deferredPartial(t)
		r := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+strings.TrimSpace(strings.Repeat(p+" ", 50))).expect(t, 400)
		if c := r.code(t); c != "invalid-upload-concat" {
			t.Errorf("the same partial upload 50 times: problem %q, want invalid-upload-concat", c)
		}
		e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+p+" "+strings.TrimPrefix(p, e.url)).expect(t, 400)

		var five []string
		for range 5 {
			five = append(five, e.deferredPartial(t))
		}
		e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+strings.Join(five, " ")).expect(t, 400)
		final := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+strings.Join(five[:4], " ")).expect(t, 201).Header.Get("Location")

		// Each partial upload is within the limit; together they are not.
		chunk := make([]byte, 300<<10)
		for _, u := range five[:4] {
			e.patch(t, u, 0, chunk, "Upload-Length: "+strconv.Itoa(len(chunk))).expect(t, 204)
		}
		if c := e.do(t, "GET", final, nil).expect(t, 413).code(t); c != "max-size-exceeded" {
			t.Errorf("GET of a final upload past MaxSize: problem %q", c)
		}
		h := e.do(t, "HEAD", final, nil, tus).expect(t, 413)
		h.header(t, "Upload-Offset", "")
	})
}

// Without MaxSize, the lengths of partial uploads still cannot add up past
// the largest length, let alone what an int64 holds.
func TestConcatenationOverflow(t *testing.T) {
	e := newEnv(t, false, resumable.Config{Store: memstore.New()})
	var urls []string
	for range 10 {
		urls = append(urls, e.do(t, "POST", "/files/", nil, tus, "Upload-Length: 999999999999999", "Upload-Concat: partial").expect(t, 201).Header.Get("Location"))
	}
	r := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+strings.Join(urls, " ")).expect(t, 413)
	if c := r.code(t); c != "max-size-exceeded" {
		t.Errorf("problem %q, want max-size-exceeded", c)
	}
}

// A final upload names only partial uploads its client could append to
// itself: below this handler's base path on this host, existing, partial
// and not expired. One that disappears before the concatenation leaves the
// final upload gone, not waiting forever.
func TestConcatenationReach(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, false, resumable.Config{Expiry: time.Hour, Now: clk.Now})
	p := e.partial(t, []byte("abc"), 3)
	id := p[strings.LastIndex(p, "/")+1:]
	for _, foreign := range []string{
		"http://elsewhere.example/files/" + id,
		"https://elsewhere.example:8443/files/" + id,
		"//elsewhere.example/files/" + id,
		e.url + "/other/" + id,
		e.url + "/files/" + id + "/x",
	} {
		e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+foreign).expect(t, 400).problem(t)
	}
	e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+p).expect(t, 201)

	waiting := e.partial(t, []byte("xyz"), 1)
	final := e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+p+" "+waiting).expect(t, 201).Header.Get("Location")
	e.do(t, "DELETE", waiting, nil, tus).expect(t, 204)
	e.do(t, "HEAD", final, nil, tus).expect(t, 410)
	e.do(t, "GET", final, nil).expect(t, 410)

	clk.Advance(time.Hour + time.Second)
	e.do(t, "POST", "/files/", nil, tus, "Upload-Concat: final;"+p).expect(t, 400).problem(t)
}
