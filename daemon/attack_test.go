package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// hostile is a request an attacker (or a broken client) sends.
type hostile struct {
	kind, method, target string
	body                 io.Reader
	header               http.Header
}

func hostileRequests(t *testing.T) []hostile {
	var hs []hostile
	add := func(kind, method, target, body string) {
		hs = append(hs, hostile{kind: kind, method: method, target: target, body: strings.NewReader(body)})
	}
	create := "/v1/sessions/app/tasks"
	get := func(path string) string { return `{"get":{"url":"http://127.0.0.1:1/f","path":"` + path + `"}}` }
	for _, b := range []string{"", "{", "[]", "null", `"x"`, "1e999", `{"get":1}`, `{"get":{"url":1}}`, `{"get":{},"put":{}}`, `{}`,
		`{"get":{"url":"http://h/f","path":"/tmp/x","bogus":1}}`, `{"priority":"high"}`, `{"priority":1e300}`, `{"not_before":"tomorrow"}`,
		`{"hls":{"url":"http://h/m.m3u8","dir":"/tmp/d","live_duration":"forever"}}`, `{"get":{"url":"http://h/f","path":"/tmp/x","header":{"A":"b"}}}`,
		get("relative"), get(""), get("\u0000"), `{"get":{"url":"http://h/f","path":"/tmp/x"}} trailing`, `{"get":{"url":"http://h/f","path":"/tmp/x"}}{}`, "\xff\xfe"} {
		add("malformed task", "POST", create, b)
	}
	add("deep nesting", "POST", create, strings.Repeat("[", 100_000))
	add("deep nesting", "POST", create, `{"get":`+strings.Repeat(`{"a":`, 20_000))
	add("2 MiB task", "POST", create, `{"get":{"url":"http://h/f","path":"/tmp/x","checksum":"`+strings.Repeat("a", 2<<20)+`"}}`)
	hs = append(hs, hostile{kind: "100 MiB body", method: "POST", target: create, body: io.LimitReader(zeros{}, 100<<20)})
	for _, s := range []string{"..", ".", "%2E%2E", "a%2Fb", "%FF", "%00", "%0A", strings.Repeat("s", 129), "%E2%80%8B%C2%A0"} {
		add("bad session", "POST", "/v1/sessions/"+s+"/tasks", get("/tmp/x"))
		add("bad session", "GET", "/v1/sessions/"+s+"/events", "")
		add("bad session", "POST", "/v1/sessions/"+s+"/ack", `{"seq":1}`)
		add("bad session", "GET", "/v1/tasks?session="+s, "")
	}
	for _, id := range []string{"..%2F..%2Fetc", "t999999999999", "%00", strings.Repeat("t", 10_000), "t-1"} {
		for _, a := range []string{"", "/wait?timeout=1ms", "/pause", "/resume", "/cancel", "/explode"} {
			m := "POST"
			if a == "" || strings.HasPrefix(a, "/wait") {
				m = "GET"
			}
			add("bad task", m, "/v1/tasks/"+id+a, "")
		}
	}
	for _, q := range []string{"after=-1", "after=99999999999999999999999", "after=x", "follow=2", "attach=yes"} {
		add("bad query", "GET", "/v1/sessions/app/events?"+q, "")
	}
	for _, b := range []string{`{"seq":"1"}`, `{"seq":-1}`, `{"seq":18446744073709551615}`, `{"seq":1e3}`, `{"seq":1,"more":2}`, `{"seq":1} {}`, strings.Repeat(" ", 5000) + `{"seq":1}`, "[]"} {
		add("bad ack", "POST", "/v1/sessions/app/ack", b)
	}
	for _, m := range []string{"PUT", "PATCH", "OPTIONS", "CONNECT", "TRACE"} {
		add("wrong method", m, "/v1/tasks", "")
		add("wrong method", m, create, get("/tmp/x"))
	}
	hs = append(hs, hostile{kind: "2 MiB header", method: "GET", target: "/v1/health", header: http.Header{"X-Big": {strings.Repeat("h", 2<<20)}}})
	return hs
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Hostile requests of many kinds: every one is refused with a 4xx (or the
// connection is closed on it), none is a server error, and the daemon
// answers as before afterwards.
func TestHostileRequests(t *testing.T) {
	d := startDaemon(t, t.TempDir(), nil)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", d.sock)
	}}}
	defer hc.CloseIdleConnections()
	counts := map[string]int{}
	refused := 0
	for _, h := range hostileRequests(t) {
		u := &url.URL{Scheme: "http", Host: "ferry", Opaque: "//ferry" + h.target} // sent as written
		if i := strings.IndexByte(h.target, '?'); i >= 0 {
			u.Opaque, u.RawQuery = "//ferry"+h.target[:i], h.target[i+1:]
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		req, err := http.NewRequestWithContext(ctx, h.method, "http://ferry/", h.body)
		if err != nil {
			t.Fatal(err)
		}
		req.URL = u
		for k, v := range h.header {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		cancel()
		counts[h.kind]++
		if err != nil {
			refused++ // closed on us: a body or header too big to read
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		lenient := strings.Contains(h.target, "follow=2") || strings.Contains(h.target, "attach=yes") // not "1": not set
		if resp.StatusCode >= 500 || (resp.StatusCode < 400 && !lenient) {
			t.Errorf("%s: %s %s: %d %s", h.kind, h.method, h.target[:min(len(h.target), 80)], resp.StatusCode, b[:min(len(b), 200)])
		}
	}
	if _, err := d.c.Health(context.Background()); err != nil {
		t.Fatalf("the daemon after the attack: %v", err)
	}
	if ts, err := d.c.Tasks(context.Background(), ""); err != nil || len(ts) != 0 {
		t.Errorf("tasks created by hostile requests: %v %v", ts, err)
	}
	var sum strings.Builder
	n := 0
	for k, c := range counts {
		fmt.Fprintf(&sum, " %s %d;", k, c)
		n += c
	}
	t.Logf("%d hostile requests of %d kinds (%d closed unanswered):%s", n, len(counts), refused, sum.String())
}
