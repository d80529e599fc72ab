package pump

import (
	"net"
	"net/http"
	"time"

	"github.com/ferryhq/ferry/internal/tcpinfo"
	"github.com/ferryhq/ferry/internal/transfer"
)

// Read wake-ups. On a fast link the reader of a body wakes for every packet
// or two that arrives: a system call and a round through the scheduler for
// 1.5 KB, which made ferry spend twice curl's CPU on a 100 Mbit/s link.
// A receive low-water mark has the kernel wake it once about wakeSpan of
// data at the body's rate is there instead. The mark stays below what the
// body is still sure to send through the socket, so the reader never waits
// for bytes that will not come; it is set only on an HTTP/1 connection,
// which carries one body at a time, and put back when the body is done.
const (
	wakeSpan = 10 * time.Millisecond
	// maxLowat bounds the mark: Linux grows the receive buffer to twice
	// the mark and clamps the window when the mark is larger than that
	// buffer; 32 KiB stays below the least buffer a connection starts with.
	maxLowat = 32 << 10
	// minLowat is the least mark worth a system call.
	minLowat = 4 << 10
	// lowatSlack is what the HTTP and TLS readers may hold of the body
	// already, read from the socket but not yet handed on.
	lowatSlack = 256 << 10
	// rateAfter is how long a body is read before its rate is trusted.
	rateAfter = 20 * time.Millisecond
)

// A Wakeup paces the reads of one response body; nil paces nothing.
type Wakeup struct {
	conn  net.Conn
	left  int64 // body bytes still to be read
	start time.Time
	got   int64 // body bytes read
	mark  int   // the mark on the socket; 1 is the kernel's default
}

// NewWakeup paces the reads of resp's body, left bytes long, or returns nil
// when it cannot (HTTP/2, an unknown length, no connection).
func NewWakeup(rec *transfer.Recorder, resp *http.Response, left int64) *Wakeup {
	c := rec.Conn()
	if resp.ProtoMajor != 1 || left < 0 || c == nil {
		return nil
	}
	return &Wakeup{conn: c, left: left, start: time.Now(), mark: 1}
}

// read accounts for n bytes read and sets the mark for the next wait.
func (w *Wakeup) read(n int) {
	if w == nil || w.conn == nil {
		return
	}
	w.got += int64(n)
	want := 1
	if el := time.Since(w.start); el >= rateAfter {
		want = int(min(float64(w.got)/el.Seconds()*wakeSpan.Seconds(), maxLowat))
	}
	want = int(min(int64(want), w.left-w.got-lowatSlack))
	if want < minLowat {
		want = 1
	}
	if want == w.mark || (want > 1 && w.mark > 1 && 4*abs(want-w.mark) < w.mark) {
		return
	}
	if !setRecvLowat(w.conn, want) {
		w.conn = nil // not supported here: leave the socket alone
		return
	}
	w.mark = want
}

// done puts the kernel's default back for whatever the connection carries
// next.
func (w *Wakeup) done() {
	if w != nil && w.conn != nil && w.mark != 1 {
		setRecvLowat(w.conn, 1)
		w.mark = 1
	}
}

// setRecvLowat is tcpinfo.SetRecvLowat; tests watch it.
var setRecvLowat = tcpinfo.SetRecvLowat

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
