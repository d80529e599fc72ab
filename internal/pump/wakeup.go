package pump

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ferryhq/ferry/internal/tcpinfo"
	"github.com/ferryhq/ferry/internal/transfer"
)

// Read wake-ups. On a fast link the reader of a body wakes for every packet
// or two that arrives: a system call and a round through the scheduler for
// 1.5 KB, which made ferry spend twice curl's CPU on a 100 Mbit/s link.
// A receive low-water mark has the kernel wake it once about wakeSpan of
// data at the body's recent rate is there instead. The mark stays below
// what the body is still sure to send through the socket, so the reader
// never waits for bytes that will not come; a guard puts it back to the
// kernel's default when no read returned for guardAfter (the rate fell:
// lowering the mark wakes the reader if anything has arrived), so a slowed
// flow still feeds the idle watchdog. It is set only on an HTTP/1
// connection, which carries one body at a time, and put back when the body
// is done.
const (
	wakeSpan   = 10 * time.Millisecond
	guardAfter = 5 * wakeSpan
	// maxLowat bounds the mark. Linux grows the receive buffer to about
	// twice a mark larger than it, and clamps the window to the mark
	// while it does; the mark is also kept under a quarter of the
	// connection's buffer (see tcpinfo.SetRecvLowat), so it never does.
	maxLowat = 32 << 10
	// startLowat is the mark before the body's rate is known.
	startLowat = 16 << 10
	// minLowat is the least mark worth a system call.
	minLowat = 4 << 10
	// lowatSlack is what may be held of the body above the socket while
	// the reader waits on it: the HTTP reader's buffer is empty then (it
	// reads the socket only when it has nothing), but TLS may hold part of
	// a record (at most 16 KiB and its framing) whose rest is awaited.
	lowatSlack = 32 << 10
	// The rate is measured over windows of rateWindow, and trusted once a
	// window is rateAfter old.
	rateWindow = 250 * time.Millisecond
	rateAfter  = 20 * time.Millisecond
)

// A Wakeup paces the reads of one response body; nil paces nothing.
type Wakeup struct {
	conn net.Conn
	left int64 // body bytes not yet read

	// The rate: bytes read since winStart, and the last estimate.
	winStart time.Time
	winGot   int64
	rate     float64

	mu    sync.Mutex
	mark  int         // the mark on the socket; 1 is the kernel's default
	guard *time.Timer // lowers the mark when reads stop returning
	off   bool        // not supported, or the body is done
}

// NewWakeup paces the reads of resp's body, left bytes long (-1: unknown),
// or returns nil when it cannot (HTTP/2, an unknown length, no connection).
// left must not exceed what the server will send for this body.
func NewWakeup(rec *transfer.Recorder, resp *http.Response, left int64) *Wakeup {
	c := rec.Conn()
	if resp.ProtoMajor != 1 || left < 0 || c == nil {
		return nil
	}
	return &Wakeup{conn: c, left: left, winStart: time.Now(), mark: 1}
}

// read accounts for n bytes read and sets the mark for the next wait.
func (w *Wakeup) read(n int) {
	if w == nil {
		return
	}
	now := time.Now()
	w.left -= int64(n)
	w.winGot += int64(n)
	if el := now.Sub(w.winStart); el >= rateAfter {
		w.rate = float64(w.winGot) / el.Seconds()
		if el >= rateWindow {
			w.winStart, w.winGot = now, 0
		}
	}
	want := int64(startLowat) // until the rate is known; the guard bounds the wait
	if w.rate > 0 {
		want = int64(min(w.rate*wakeSpan.Seconds(), maxLowat))
	}
	want = min(want, w.left-lowatSlack)
	if want < minLowat {
		want = 1
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.off {
		return
	}
	if int(want) != w.mark && (want == 1 || w.mark == 1 || 4*abs(int(want)-w.mark) >= w.mark) {
		w.setLocked(int(want))
	}
	if w.mark > 1 {
		if w.guard == nil {
			w.guard = time.AfterFunc(guardAfter, w.lower)
		} else {
			w.guard.Reset(guardAfter)
		}
	}
}

// lower puts the kernel's default back when no read returned for a while.
func (w *Wakeup) lower() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.off && w.mark > 1 {
		w.setLocked(1)
	}
}

func (w *Wakeup) setLocked(n int) {
	if !setRecvLowat(w.conn, n) {
		w.off = true // not supported here: leave the socket alone
		return
	}
	w.mark = n
}

// done puts the kernel's default back for whatever the connection carries
// next.
func (w *Wakeup) done() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.guard != nil {
		w.guard.Stop()
	}
	if !w.off && w.mark != 1 {
		setRecvLowat(w.conn, 1)
		w.mark = 1
	}
	w.off = true
}

// setRecvLowat is tcpinfo.SetRecvLowat; tests watch it.
var setRecvLowat = tcpinfo.SetRecvLowat

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
