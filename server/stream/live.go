package stream

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryhq/ferry/server/store"
)

const (
	// maxReplies and maxReplyBytes bound the replies kept for a client
	// that has not collected them (up to twice as many while they are
	// trimmed); the oldest go first. A client that never reads its
	// response thus holds at most a few MiB per stream. 1 MiB is some
	// 13000 level replies: twenty minutes of a recording's.
	maxReplies    = 1 << 16
	maxReplyBytes = 1 << 20
	// takeoverWait bounds how long a request waits for the one it takes
	// the stream over from, or the drop of a stream for the request
	// holding it.
	takeoverWait = 10 * time.Second
)

var errProcessorDone = errors.New("the processor has finished")

// live is a stream in progress: an upload of deferred length in the
// handler's store, with its processor and replies.
type live struct {
	id, name, url string
	client        string // Config.ClientKey of the creating request
	resumable     bool

	offset atomic.Int64 // bytes stored, durably; written by the request holding l
	// fed is how far the processor and sum have seen the stream, which
	// can be past offset when a store kept less of a write than it read:
	// the client sends those bytes again, and they are not fed twice.
	// Used by the request holding l.
	fed int64
	sum hash.Hash
	// resent is set when feed skipped bytes a client sent again: they
	// may differ from the ones fed, so the sum is made again at the end.
	resent bool

	// The processor reads what pw is given.
	pw         *io.PipeWriter
	procDone   chan struct{}
	procGone   atomic.Bool
	cancelProc context.CancelFunc

	// One request at a time holds the stream (the handler's uploads
	// lock it); between requests, a resumable one may expire.
	stateMu   sync.Mutex
	held      bool
	expire    *time.Timer
	abandoned bool
	done      bool

	// Replies, in order of seq.
	logMu     sync.Mutex
	replies   []reply
	logBytes  int // of the replies' lines
	seq       int64
	logClosed bool
	changed   chan struct{} // closed at every new reply
}

type reply struct {
	seq  int64
	line []byte
}

func newLive(id, name string, resumable bool) *live {
	return &live{
		id: id, name: name, resumable: resumable,
		sum:      sha256.New(),
		procDone: make(chan struct{}),
		changed:  make(chan struct{}),
	}
}

// enter marks the stream held by the request that holds its upload, so
// that it does not expire meanwhile. It reports false when the stream has
// ended.
func (l *live) enter() bool {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if l.abandoned || l.done {
		return false
	}
	l.held = true
	if l.expire != nil {
		l.expire.Stop()
	}
	return true
}

// release marks the stream no longer held; an unfinished one calls
// expired unless a request enters within after (never, when after is 0).
func (l *live) release(expired func(), after time.Duration) {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if !l.held {
		return
	}
	l.held = false
	if !l.done && !l.abandoned && after > 0 {
		l.expire = time.AfterFunc(after, expired)
	}
}

func (l *live) isAbandoned() bool {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	return l.abandoned
}

// resum makes the sum that of the bytes stored in up.
func (l *live) resum(ctx context.Context, up store.Upload) error {
	r, err := up.GetReader(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	l.sum.Reset()
	l.fed, err = io.Copy(l.sum, r)
	return err
}

func (l *live) isDone() bool {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	return l.done
}

// feed hands p, the stream's bytes from pos on, to the sum and the
// processor, but those they have seen already.
func (l *live) feed(p []byte, pos int64) {
	if skip := l.fed - pos; skip > 0 {
		l.resent = true
		if skip >= int64(len(p)) {
			return
		}
		p = p[skip:]
	}
	l.sum.Write(p)
	l.fed += int64(len(p))
	if !l.procGone.Load() {
		if _, err := l.pw.Write(p); err != nil {
			l.procGone.Store(true) // it stopped reading; the rest is stored only
		}
	}
}

func (l *live) startProcessor(p Processor) {
	if p == nil {
		l.procGone.Store(true)
		l.cancelProc = func() {}
		close(l.procDone)
		return
	}
	pr, pw := io.Pipe()
	l.pw = pw
	ctx, cancel := context.WithCancel(context.Background())
	l.cancelProc = cancel
	go func() {
		defer close(l.procDone)
		defer pr.CloseWithError(errProcessorDone)
		defer func() {
			if v := recover(); v != nil {
				l.emit(errorReply{Type: "error", Error: fmt.Sprintf("the processor failed: %v", v)})
			}
		}()
		err := p.Process(ctx, pr, l.emit)
		if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
			l.emit(errorReply{Type: "error", Error: err.Error()})
		}
	}()
}

// endProcessor tells the processor the stream is complete and waits for
// its last replies.
func (l *live) endProcessor() {
	if l.pw != nil {
		l.pw.Close()
	}
	<-l.procDone
}

// setDone marks the stream finished: stored under its name.
func (l *live) setDone() {
	l.stateMu.Lock()
	l.done = true
	l.stateMu.Unlock()
}

// abandon stops the processor and ends the stream for requests to come;
// the caller terminates its upload. It reports false when l had already
// ended.
func (l *live) abandon(why error) bool {
	l.stateMu.Lock()
	if l.abandoned || l.done {
		l.stateMu.Unlock()
		return false
	}
	l.abandoned = true
	if l.expire != nil {
		l.expire.Stop()
	}
	l.stateMu.Unlock()
	// The log closes first, so the failures this causes a request still
	// holding l (Handler.Close drops streams mid-request) are not
	// replied.
	l.closeLog()
	if l.pw != nil {
		l.pw.CloseWithError(why)
	}
	l.cancelProc()
	return true
}

// emit adds a reply. A JSON object gets "seq" first; any other value is
// wrapped as {"seq":N,"data":V}.
func (l *live) emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(errorReply{Type: "error", Error: "a reply could not be encoded: " + err.Error()})
	}
	l.logMu.Lock()
	defer l.logMu.Unlock()
	if l.logClosed {
		return
	}
	l.seq++
	line := withSeq(b, l.seq)
	l.replies = append(l.replies, reply{l.seq, line})
	l.logBytes += len(line)
	if len(l.replies) >= 2*maxReplies || l.logBytes >= 2*maxReplyBytes {
		// Trimmed by half at a time, so that a long stream does not copy
		// the log for every reply.
		i, held := len(l.replies), 0
		for i > 0 && len(l.replies)-i < maxReplies && held+len(l.replies[i-1].line) <= maxReplyBytes {
			i--
			held += len(l.replies[i].line)
		}
		l.drop(i)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func withSeq(b []byte, seq int64) []byte {
	out := make([]byte, 0, len(b)+24)
	out = append(out, `{"seq":`...)
	out = strconv.AppendInt(out, seq, 10)
	if len(b) >= 2 && b[0] == '{' {
		if b[1] != '}' {
			out = append(out, ',')
		}
		out = append(out, b[1:]...)
	} else {
		out = append(out, `,"data":`...)
		out = append(out, b...)
		out = append(out, '}')
	}
	return append(out, '\n')
}

// closeLog ends the replies: senders stop once they have sent the rest.
func (l *live) closeLog() {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	if !l.logClosed {
		l.logClosed = true
		close(l.changed)
		l.changed = make(chan struct{})
	}
}

// forget drops the replies up to seq, which the client has.
func (l *live) forget(seq int64) {
	l.logMu.Lock()
	defer l.logMu.Unlock()
	l.drop(sort.Search(len(l.replies), func(i int) bool { return l.replies[i].seq > seq }))
}

// drop removes the first n replies; the caller holds logMu.
func (l *live) drop(n int) {
	for _, r := range l.replies[:n] {
		l.logBytes -= len(r.line)
	}
	l.replies = append(l.replies[:0:0], l.replies[n:]...)
}

// sendReplies writes the replies after seq as they come, until the log is
// closed, or stop closes (then it sends what is there and returns).
func (l *live) sendReplies(w io.Writer, rc *http.ResponseController, after int64, stop <-chan struct{}) {
	last, stopping := after, false
	for {
		l.logMu.Lock()
		i := sort.Search(len(l.replies), func(i int) bool { return l.replies[i].seq > last })
		batch := l.replies[i:]
		lines := make([][]byte, len(batch))
		for k, r := range batch {
			lines[k] = r.line
		}
		if len(batch) > 0 {
			last = batch[len(batch)-1].seq
		}
		changed, closed := l.changed, l.logClosed
		l.logMu.Unlock()
		for _, line := range lines {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
		if len(lines) > 0 && rc.Flush() != nil {
			return
		}
		if len(lines) > 0 && !l.resumable {
			l.forget(last) // no later request will ask for them
		}
		if closed || stopping {
			return
		}
		select {
		case <-changed:
		case <-stop:
			stopping = true
		}
	}
}
