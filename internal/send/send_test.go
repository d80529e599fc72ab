package send

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/internal/httprange"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// events collects what an Env emits.
type events struct {
	mu  sync.Mutex
	all []transfer.Event
}

func (e *events) emit(ev transfer.Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

func (e *events) of(f func(transfer.Event) bool) (n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if f(ev) {
			n++
		}
	}
	return n
}

func (e *events) transactions() (txs []transfer.TransactionMetrics) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if m, ok := ev.(transfer.MetricsEvent); ok {
			txs = append(txs, m.Transaction)
		}
	}
	return txs
}

func newEnv(t *testing.T, url string, ev *events) *Env {
	t.Helper()
	// As a session's: compression off, so the transport adds no coding.
	tr := &http.Transport{DisableCompression: true}
	e := &Env{Client: &http.Client{Transport: tr, CheckRedirect: transfer.CheckRedirect}, URL: url, Emit: ev.emit,
		Header: http.Header{"Authorization": {"Bearer secret"}, "X-Plain": {"yes"}}}
	e.Init()
	t.Cleanup(e.Client.CloseIdleConnections)
	return e
}

// get sends one request through e and reads its body.
func get(t *testing.T, e *Env, method, target string, ranged bool) *http.Response {
	t.Helper()
	var resp *http.Response
	err := e.Attempt(context.Background(), target, func(ctx context.Context, wd *watchdog.Watchdog) error {
		var x *Exchange
		var err error
		if ranged {
			x, err = e.NewRanged(ctx, wd, method, target)
		} else {
			x, err = e.NewRequest(ctx, wd, method, target, nil)
		}
		if err != nil {
			return err
		}
		if resp, err = x.Do(); err != nil {
			return err
		}
		defer resp.Body.Close()
		n, err := x.Pump(ctx, resp, resp.Body, resp.ContentLength, make([]byte, 4096), func([]byte) error { return nil })
		x.Finish(n, err)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// Each redirect hop is a transaction of its own, and a task that follows
// the same hops twice (a probe, then its GET) followed them once.
func TestRedirectHops(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/b", http.StatusMovedPermanently) })
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/c", http.StatusFound) })
	mux.HandleFunc("/c", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "body") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ev := &events{}
	e := newEnv(t, srv.URL+"/a", ev)
	get(t, e, http.MethodHead, srv.URL+"/a", true)
	get(t, e, http.MethodGet, srv.URL+"/a", true)

	if n := ev.of(func(e transfer.Event) bool { _, ok := e.(transfer.RedirectEvent); return ok }); n != 2 {
		t.Errorf("%d redirect events, want 2 (one per hop)", n)
	}
	txs := ev.transactions()
	want := []string{"HEAD /a 301", "HEAD /b 302", "HEAD /c 200", "GET /a 301", "GET /b 302", "GET /c 200"}
	if len(txs) != len(want) {
		t.Fatalf("%d transactions, want %d: %+v", len(txs), len(want), txs)
	}
	for i, tx := range txs {
		got := fmt.Sprintf("%s %s %d", tx.Method, strings.TrimPrefix(tx.URL, srv.URL), tx.StatusCode)
		if got != want[i] || tx.End.IsZero() || tx.Start.After(tx.End) || tx.ResponseHeaderBytes == 0 {
			t.Errorf("transaction %d = %s (%+v), want %s", i, got, tx, want[i])
		}
	}
	if body := txs[5].ResponseBodyBytes; body != 4 {
		t.Errorf("the last hop's body = %d bytes, want 4", body)
	}
}

// Every request names ferry unless the task names itself, asks for no
// content coding when ranged, and carries credentials only to the task's
// origin.
func TestRequestHeader(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]http.Header{}
	record := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[name] = r.Header.Clone()
			mu.Unlock()
		}
	}
	other := httptest.NewServer(record("other"))
	defer other.Close()
	origin := httptest.NewServer(record("origin"))
	defer origin.Close()

	ev := &events{}
	e := newEnv(t, origin.URL, ev)
	e.Header.Set("Accept-Encoding", "gzip")
	get(t, e, http.MethodGet, origin.URL, true)
	get(t, e, http.MethodGet, other.URL, false)
	if h := seen["origin"]; h.Get("User-Agent") != UserAgent || h.Get("Authorization") == "" || h.Get("Accept-Encoding") != "" {
		t.Errorf("to the origin: %v", h)
	}
	if h := seen["other"]; h.Get("Authorization") != "" || h.Get("X-Plain") != "yes" || h.Get("Accept-Encoding") != "gzip" {
		t.Errorf("to another origin: %v", h)
	}
	e.Header.Set("User-Agent", "app/1")
	get(t, e, http.MethodGet, origin.URL, false)
	if ua := seen["origin"].Values("User-Agent"); len(ua) != 1 || ua[0] != "app/1" {
		t.Errorf("User-Agent = %q, want the task's own", ua)
	}
}

// A request that gets no answer is transient; one the context ended
// reports the context's cause; a redirect the policy refuses is final.
func TestDoClassifies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	ev := &events{}
	e := newEnv(t, srv.URL, ev)
	refused := errors.New("no redirects")
	e.CheckRedirect = func(*http.Request, []*http.Request) error { return refused }
	do := func(ctx context.Context, target string) error {
		return e.Attempt(ctx, target, func(ctx context.Context, wd *watchdog.Watchdog) error {
			x, err := e.NewRequest(ctx, wd, http.MethodGet, target, nil)
			if err != nil {
				return err
			}
			resp, err := x.Do()
			if err == nil {
				resp.Body.Close()
				x.Finish(0, nil)
			}
			return err
		})
	}
	if err := do(context.Background(), srv.URL); !errors.Is(err, refused) {
		t.Errorf("refused redirect: %v", err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	if err := do(context.Background(), deadURL); !errors.As(err, new(*transfer.Transient)) {
		t.Errorf("no server: %T %v, want *transfer.Transient", err, err)
	}
	cause := errors.New("stopped")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	if err := do(ctx, srv.URL); !errors.Is(err, cause) {
		t.Errorf("ended context: %v, want its cause", err)
	}
	for _, tx := range ev.transactions() {
		if tx.End.IsZero() {
			t.Errorf("an unfinished transaction: %+v", tx)
		}
	}
}

// Metered bodies wait for the budget and count toward progress.
func TestMetered(t *testing.T) {
	lim := &countingLimiter{burst: 1000}
	e := &Env{Limiter: lim}
	e.Init()
	n, err := io.Copy(io.Discard, e.Metered(context.Background(), nil, strings.NewReader(strings.Repeat("x", 4500))))
	if err != nil || n != 4500 {
		t.Fatalf("copied %d, %v", n, err)
	}
	if lim.n != 4500 || lim.max > 1000 || e.Meter.Moved() != 4500 {
		t.Errorf("limiter saw %d bytes (largest wait %d, burst 1000), progress %d; want 4500", lim.n, lim.max, e.Meter.Moved())
	}
	lim.err = errors.New("budget closed")
	if _, err := e.Metered(context.Background(), nil, strings.NewReader("abc")).Read(make([]byte, 10)); !errors.Is(err, lim.err) {
		t.Errorf("read under a failing budget: %v", err)
	}
}

type countingLimiter struct {
	burst, n, max int
	err           error
}

func (l *countingLimiter) WaitN(_ context.Context, n int) error {
	if l.err != nil {
		return l.err
	}
	l.n += n
	l.max = max(l.max, n)
	return nil
}
func (l *countingLimiter) Burst() int { return l.burst }

func TestPartial(t *testing.T) {
	v := httprange.Validator{ETag: `"v1"`}
	resp := func(cr, enc, etag string, length int64) *http.Response {
		h := http.Header{}
		if cr != "" {
			h.Set("Content-Range", cr)
		}
		if enc != "" {
			h.Set("Content-Encoding", enc)
		}
		if etag != "" {
			h.Set("ETag", etag)
		}
		return &http.Response{StatusCode: http.StatusPartialContent, Header: h, ContentLength: length}
	}
	segment := Want{First: 100, Last: 199, Size: 1000, Validator: v}
	rest := Want{First: 100, Last: -1, Size: -1}
	for _, c := range []struct {
		name string
		resp *http.Response
		want Want
		err  error
	}{
		{"exact", resp("bytes 100-199/1000", "", `"v1"`, 100), segment, nil},
		{"identity coding", resp("bytes 100-199/1000", "identity", "", -1), segment, nil},
		{"open-ended rest", resp("bytes 100-999/1000", "", "", 900), rest, nil},
		{"another start", resp("bytes 0-99/1000", "", "", 100), segment, transfer.ErrBadContentRange},
		{"more than asked", resp("bytes 100-299/1000", "", "", 200), segment, transfer.ErrBadContentRange},
		{"other size", resp("bytes 100-199/2000", "", "", 100), segment, transfer.ErrBadContentRange},
		{"length disagrees", resp("bytes 100-199/1000", "", "", 50), segment, transfer.ErrBadContentRange},
		{"encoded", resp("bytes 100-199/1000", "gzip", "", 100), segment, transfer.ErrBadContentRange},
		{"no Content-Range", resp("", "", "", 100), segment, transfer.ErrBadContentRange},
		{"other version", resp("bytes 100-199/1000", "", `"v2"`, 100), segment, ErrOtherVersion},
	} {
		if _, err := Partial(c.resp, c.want); !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	if _, err := Partial(&http.Response{StatusCode: http.StatusOK, Header: http.Header{}}, rest); !errors.Is(err, transfer.ErrBadContentRange) {
		t.Errorf("a 200 is no partial answer: %v", err)
	}
}
