package ferrytest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// LiveHLS serves a live HLS media playlist that gains a segment every
// Interval and lists the Window newest ones, as a live packager does; the
// playlist is at URL+"/live.m3u8" and segment n at URL+"/seg/n.ts". Each
// segment's content is Segment(n).
type LiveHLS struct {
	URL      string
	Interval time.Duration
	Window   int

	start time.Time
	ts    *httptest.Server
	mu    sync.Mutex
	ended int64 // the last sequence number once End was called, else -1
	loads int
	gone  bool
}

// Gone makes the playlist answer 404 from now on, as a stream that stops
// without EXT-X-ENDLIST does.
func (l *LiveHLS) Gone() {
	l.mu.Lock()
	l.gone = true
	l.mu.Unlock()
}

// Loads is how many times the playlist was fetched.
func (l *LiveHLS) Loads() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loads
}

// NewLiveHLS starts a live stream whose playlist already lists window
// segments, numbered from 0, and closes it when the test ends.
func NewLiveHLS(tb testing.TB, interval time.Duration, window int) *LiveHLS {
	tb.Helper()
	l := &LiveHLS{Interval: interval, Window: max(window, 1), start: time.Now(), ended: -1}
	l.ts = httptest.NewServer(http.HandlerFunc(l.serve))
	tb.Cleanup(l.ts.Close)
	l.URL = l.ts.URL
	return l
}

// Newest is the sequence number of the newest segment listed now.
func (l *LiveHLS) Newest() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended >= 0 {
		return l.ended
	}
	return int64(l.Window-1) + int64(time.Since(l.start)/l.Interval)
}

// End makes the playlist final (EXT-X-ENDLIST) at its current newest
// segment.
func (l *LiveHLS) End() {
	n := l.Newest()
	l.mu.Lock()
	l.ended = n
	l.mu.Unlock()
}

// Segment is the content of segment n: a few kilobytes unique to it.
func Segment(n int64) []byte {
	line := fmt.Sprintf("segment %d of a live stream\n", n)
	return []byte(strings.Repeat(line, 4096/len(line)+1))
}

func (l *LiveHLS) serve(w http.ResponseWriter, r *http.Request) {
	newest := l.Newest()
	l.mu.Lock()
	gone := l.gone
	l.mu.Unlock()
	if r.URL.Path == "/live.m3u8" && gone {
		http.NotFound(w, r)
		return
	}
	if r.URL.Path == "/live.m3u8" {
		first := max(0, newest-int64(l.Window)+1)
		target := max(1, int((l.Interval+time.Second-1)/time.Second))
		var b strings.Builder
		fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", target, first)
		for n := first; n <= newest; n++ {
			fmt.Fprintf(&b, "#EXTINF:%s,\nseg/%d.ts\n", strconv.FormatFloat(l.Interval.Seconds(), 'f', -1, 64), n)
		}
		l.mu.Lock()
		l.loads++
		if l.ended >= 0 {
			b.WriteString("#EXT-X-ENDLIST\n")
		}
		l.mu.Unlock()
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		w.Write([]byte(b.String()))
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/seg/")
	n, err := strconv.ParseInt(strings.TrimSuffix(name, ".ts"), 10, 64)
	if !ok || err != nil || n < 0 || n > newest {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "video/mp2t")
	w.Write(Segment(n))
}
