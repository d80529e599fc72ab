// Package stream is the client engine of a live streamed upload: the caller
// writes the data as it is produced, the engine sends it in one streamed
// request and hands over the server's replies (one per line) while the
// request still runs.
//
// A resumable stream is an IETF resumable-upload draft upload of unknown
// length: the first request creates it with Upload-Complete: ?0 and learns
// its URL from the 104 interim response; after a dropped connection the
// engine asks for the offset (HEAD) and continues (PATCH) from there; the
// last append says Upload-Complete: ?1. Bytes the server has not confirmed
// stay in the spool (memory up to a bound, then a temporary file), and the
// engine names the last reply it got (Ferry-Replies-After), so replies go
// on after a reconnect without gaps or repeats.
package stream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ferryhq/ferry/internal/dialect"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// DefaultMemory bounds the bytes a stream holds in memory.
const DefaultMemory = 8 << 20

// proto is the resumable dialect a stream speaks.
var proto = dialect.IETF8

// maxReplyLine bounds one reply line.
const maxReplyLine = 1 << 20

// maxInterim bounds the interim (1xx) responses to one request: enough
// for a 104 with the offset every second for a day.
const maxInterim = 100_000

var errTooManyInterim = fmt.Errorf("stream: more than %d interim responses to one request", maxInterim)

// Job describes one live upload: the task's Env, whose URL is where the
// stream goes, and what is particular to a stream. Its MinSpeed is not
// used: a stream goes at its producer's pace. The Env's IdleTimeout ends a
// request on which nothing moved for this long while there was something
// to send or a reply was due: a connection dropped without a word. Time
// spent waiting for the producer does not count. A resumable stream then
// continues on a new connection. A stream's request holds its host slot
// while it runs.
type Job struct {
	*send.Env
	ContentType string
	// Resumable makes the stream survive dropped connections.
	Resumable bool
	// Memory bounds the bytes held in memory (default DefaultMemory). A
	// plain stream blocks the writer when it is full; a resumable one
	// spills to a file in TempDir.
	Memory  int64
	TempDir string
	// OnReply receives the server's replies in order, each once.
	OnReply func(Reply)
}

// Reply is one line of the server's answer.
type Reply struct {
	// Seq is the server's sequence number, 0 when it numbers none.
	Seq int64
	// Type is the reply's "type" member, when it has one.
	Type string
	// Line is the reply as sent, without the line end.
	Line []byte
}

// Result is what a finished stream reports.
type Result struct {
	Location string // the upload's URL, for a resumable stream
	Bytes    int64  // the stream's length
	SHA256   string // of the bytes written, hex
	// Verified is true when the server's "done" reply named the same
	// length and sha-256.
	Verified bool
	Proto    string
	Replies  int64
}

// ErrLost reports a plain (not resumable) stream cut short: what was sent
// cannot be continued.
var ErrLost = errors.New("stream: the connection dropped and the stream is not resumable")

// Stream is one live upload: Write and Close feed it, Run sends it.
type Stream struct {
	j     *Job
	spool *spool
	sum   hash.Hash // of everything written, under spool's writes
	sumMu sync.Mutex

	loc       atomic.Pointer[string]
	nextOff   int64 // the offset the last request ended at, -1 when unknown
	lastSeq   int64
	lastError string // the server\'s last {"type":"error"} reply
	replies   atomic.Int64
	done      *doneReply
	proto     string
}

// New returns a stream ready to be written to and run.
func New(j *Job) *Stream {
	if j.Memory <= 0 {
		j.Memory = DefaultMemory
	}
	if j.Env == nil {
		j.Env = &send.Env{}
	}
	j.Init()
	j.MinSpeed = 0 // a stream goes at its producer's pace
	if j.OnReply == nil {
		j.OnReply = func(Reply) {}
	}
	return &Stream{j: j, spool: newSpool(j.Memory, j.Resumable, j.TempDir), sum: sha256.New(), nextOff: -1}
}

// Write adds p to the stream. It blocks while a plain stream's buffer is
// full; it fails once the stream was aborted or closed.
func (s *Stream) Write(p []byte) (int, error) {
	s.sumMu.Lock()
	defer s.sumMu.Unlock()
	n, err := s.spool.Write(p)
	s.sum.Write(p[:n])
	return n, err
}

// Close ends the stream: Run sends the rest and finishes.
func (s *Stream) Close() error { return s.spool.Close() }

// Abort fails the stream: writes and Run return err.
func (s *Stream) Abort(err error) { s.spool.abort(err) }

// Location is the upload's URL once the server named it.
func (s *Stream) Location() string {
	if l := s.loc.Load(); l != nil {
		return *l
	}
	return ""
}

// Run sends the stream until it is complete and the server confirmed it,
// or ctx ends (a resumable stream can Run again later), or it fails.
func (s *Stream) Run(ctx context.Context) (*Result, error) {
	res, err := s.run(ctx)
	if err != nil {
		err = s.j.Failed(ctx, "stream", err)
	}
	return res, err
}

func (s *Stream) run(ctx context.Context) (*Result, error) {
	rt := s.j.Retrier()
	for {
		acked, _, _, _ := s.spool.state()
		complete, err := s.attempt(ctx)
		if err == nil && complete {
			return s.result()
		}
		if err == nil {
			rt.Succeeded()
			continue
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if _, _, _, aerr := s.spool.state(); aerr != nil {
			return nil, aerr
		}
		if !s.j.Resumable {
			// Only a broken connection loses a plain stream; a refusal
			// (a status, the server ending it) is reported as it is.
			if _, broken := err.(*transfer.Transient); broken || errors.Is(err, transfer.ErrIdleTimeout) {
				err = fmt.Errorf("%w: %w", ErrLost, err)
			}
			s.spool.abort(err)
			return nil, err
		}
		// Only bytes the server acknowledged are progress: one that takes
		// every request and keeps none must not be retried forever.
		base, _, _, _ := s.spool.state()
		if err := rt.Failed(ctx, err, base > acked); err != nil {
			return nil, err
		}
	}
}

func (s *Stream) result() (*Result, error) {
	_, written, _, _ := s.spool.state()
	s.sumMu.Lock()
	sum := hex.EncodeToString(s.sum.Sum(nil))
	s.sumMu.Unlock()
	res := &Result{Location: s.Location(), Bytes: written, SHA256: sum, Proto: s.proto, Replies: s.replies.Load()}
	if d := s.done; d != nil && d.SHA256 != "" {
		if d.Bytes != written || d.SHA256 != sum {
			// The server stored something else: say what, by length
			// and digest of both sides.
			return res, &transfer.IntegrityError{What: "the stored stream's sha-256",
				Want: fmt.Sprintf("%s (%d bytes)", sum, written), Got: fmt.Sprintf("%s (%d bytes)", d.SHA256, d.Bytes)}
		}
		res.Verified = true
	}
	s.spool.release()
	return res, nil
}

// attempt runs one request: the creation, an append, or the final
// completion. It reports whether the stream is complete.
func (s *Stream) attempt(ctx context.Context) (complete bool, err error) {
	method, target := http.MethodPost, s.j.URL
	hdr := http.Header{}
	var from int64
	if s.j.Resumable {
		if loc := s.Location(); loc != "" {
			// After a request that ended cleanly its offset is known;
			// after a failure, ask.
			off, done := s.nextOff, false
			s.nextOff = -1
			if off < 0 {
				var err error
				if off, done, err = s.offset(ctx, loc); err != nil {
					return false, err
				}
			}
			if done {
				// The server holds the whole stream only if the producer
				// is done and the server has all it wrote.
				_, written, closed, _ := s.spool.state()
				if !closed || off != written {
					return false, fmt.Errorf("stream: the server says the upload is complete at %d bytes, but the stream goes on (%d written so far)", off, written)
				}
				return true, nil
			}
			s.spool.ack(off)
			from = off
			method, target = http.MethodPatch, loc
		}
		// Once the producer has finished, the request carries the rest
		// and says so; before that, appends stay open (?0).
		_, _, closed, _ := s.spool.state()
		if method == http.MethodPatch {
			hdr = proto.Append(from, closed)
			hdr.Set(repliesAfterHeader, strconv.FormatInt(s.lastSeq, 10))
		} else {
			hdr = proto.Create(-1, closed)
		}
	}
	if method == http.MethodPost && s.j.ContentType != "" {
		hdr.Set("Content-Type", s.j.ContentType)
	}
	body := &bodyReader{s: s, off: from}
	return s.exchange(ctx, method, target, hdr, body)
}

const repliesAfterHeader = "Ferry-Replies-After"

// exchange sends one streamed request and reads its replies, under the
// job's limits: a host slot, the idle watchdog, the bandwidth budget.
func (s *Stream) exchange(ctx context.Context, method, target string, hdr http.Header, body *bodyReader) (complete bool, err error) {
	err = s.j.Attempt(ctx, target, func(actx context.Context, wd *watchdog.Watchdog) error {
		var err error
		complete, err = s.send(actx, wd, method, target, hdr, body)
		return err
	})
	return complete, err
}

func (s *Stream) send(ctx context.Context, wd *watchdog.Watchdog, method, target string, hdr http.Header, body *bodyReader) (complete bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var loc atomic.Pointer[string]
	interim := 0
	trace := &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			// net/http leaves the count of interim responses to whoever
			// looks at them: without a bound, a server could answer
			// with them for ever.
			if interim++; interim > maxInterim {
				cancel(errTooManyInterim) // wakes the body, which may wait for the producer
				return errTooManyInterim
			}
			if code == 104 {
				if l := h.Get("Location"); l != "" {
					loc.Store(&l)
				}
			}
			return nil
		},
	}
	x, err := s.j.NewRequest(httptrace.WithClientTrace(ctx, trace), wd, method, target, body)
	if err != nil {
		return false, err
	}
	req := x.Req
	req.ContentLength = -1
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	body.stop = func() bool { return ctx.Err() != nil }
	body.ctx, body.wd = ctx, wd
	stopWatch := context.AfterFunc(ctx, s.spool.wake)
	defer stopWatch()

	x.Sent = body.sent.Load
	resp, err := x.Do()
	if l := loc.Load(); l != nil {
		if lerr := s.setLocation(target, *l); lerr != nil {
			if err == nil {
				resp.Body.Close()
			}
			return false, lerr
		}
	}
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	s.proto = resp.Proto
	if l := resp.Header.Get("Location"); l != "" && s.j.Resumable {
		if err := s.setLocation(target, l); err != nil {
			return false, err
		}
	}
	if resp.StatusCode/100 != 2 {
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		x.Finish(int64(len(b)), rerr)
		se := transfer.ResponseError(resp)
		if resp.StatusCode == http.StatusConflict && s.j.Resumable {
			// The offset moved under us (another request landed
			// late): ask again.
			return false, &transfer.Transient{Err: fmt.Errorf("%v: %s", se, bytes.TrimSpace(b))}
		}
		// A problem's title (RFC 9457) says why better than the status.
		var prob struct{ Title string }
		if json.Unmarshal(b, &prob) == nil && prob.Title != "" {
			return false, fmt.Errorf("%w: %s", se, prob.Title)
		}
		return false, se
	}
	replies := &kickReader{r: resp.Body, wd: wd}
	rerr := s.readReplies(replies)
	x.Finish(replies.n, rerr)
	if rerr != nil {
		return false, &transfer.Transient{Err: rerr}
	}
	// The response ended: the server has read the whole body.
	berr := body.failure()
	if berr != nil && !errors.Is(berr, io.EOF) {
		return false, &transfer.Transient{Err: berr}
	}
	trailerOff, trailerComplete, terr := proto.Offset(resp.Trailer)
	if terr == nil {
		s.spool.ack(trailerOff)
		s.nextOff = trailerOff
	} else {
		s.nextOff = -1
	}
	if !errors.Is(berr, io.EOF) {
		// The server ended its answer before the stream's end: it will
		// take no more on this request.
		why := "the server ended the stream before its end"
		if s.lastError != "" {
			why += ": " + s.lastError
		}
		if !s.j.Resumable {
			return false, errors.New("stream: " + why)
		}
		return false, &transfer.Transient{Err: errors.New(why)}
	}
	if !s.j.Resumable {
		return true, nil
	}
	if terr == nil && trailerComplete {
		return true, nil
	}
	if req.Header.Get("Upload-Complete") == "?1" {
		return true, nil
	}
	return false, nil
}

// kickReader counts the reply bytes and tells the watchdog they moved.
type kickReader struct {
	r  io.Reader
	wd *watchdog.Watchdog
	n  int64
}

func (k *kickReader) Read(p []byte) (int, error) {
	n, err := k.r.Read(p)
	if n > 0 {
		k.n += int64(n)
		k.wd.Add(n)
	}
	return n, err
}

func (s *Stream) setLocation(base, l string) error {
	if s.Location() != "" {
		return nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return err
	}
	u, err := b.Parse(l)
	if err != nil {
		return fmt.Errorf("stream: the server's Location %q: %w", l, err)
	}
	if err := transfer.CheckTarget(u, b); err != nil {
		return err
	}
	l = u.String()
	s.loc.Store(&l)
	return nil
}

// offset asks the server how much of the stream it holds.
func (s *Stream) offset(ctx context.Context, loc string) (off int64, complete bool, err error) {
	err = s.j.Attempt(ctx, loc, func(actx context.Context, wd *watchdog.Watchdog) error {
		var err error
		off, complete, err = s.head(actx, wd, loc)
		return err
	})
	return off, complete, err
}

func (s *Stream) head(ctx context.Context, wd *watchdog.Watchdog, loc string) (int64, bool, error) {
	x, err := s.j.NewRequest(ctx, wd, http.MethodHead, loc, nil)
	if err != nil {
		return 0, false, err
	}
	for k, vs := range proto.Header() {
		x.Req.Header[k] = vs
	}
	resp, err := x.Do()
	if err != nil {
		return 0, false, err
	}
	resp.Body.Close()
	x.Finish(0, nil)
	if resp.StatusCode/100 != 2 {
		se := transfer.ResponseError(resp)
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			return 0, false, fmt.Errorf("stream: the server no longer has the upload: %w", se)
		}
		return 0, false, se
	}
	base, written, _, _ := s.spool.state()
	return offsetAnswer(resp.Header, base, written)
}

// offsetAnswer reads a server's answer to an offset request (draft §4.3):
// Upload-Offset must lie between what the server acknowledged before
// (base) and what was written, since bytes before base are gone from the
// spool and bytes after written never existed.
func offsetAnswer(h http.Header, base, written int64) (off int64, complete bool, err error) {
	off, complete, err = proto.Offset(h)
	if err != nil {
		return 0, false, fmt.Errorf("stream: the server's answer: %w", err)
	}
	if off < base || off > written {
		return 0, false, fmt.Errorf("stream: the server holds %d bytes, outside the %d-%d this client can send", off, base, written)
	}
	return off, complete, nil
}

// replyHead is what the engine reads of a reply.
type replyHead struct {
	Seq    int64  `json:"seq"`
	Type   string `json:"type"`
	Offset int64  `json:"offset"`
}

type doneReply struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// readReplies hands each reply line to OnReply, skipping those already
// seen, until the response ends.
func (s *Stream) readReplies(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			s.reply(line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxReplyLine {
			return nil, fmt.Errorf("stream: a reply longer than %d bytes", maxReplyLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

func (s *Stream) reply(line []byte) {
	var h replyHead
	if json.Unmarshal(line, &h) == nil {
		if h.Seq > 0 {
			if h.Seq <= s.lastSeq {
				return // sent again after a reconnect
			}
			s.lastSeq = h.Seq
		}
		switch h.Type {
		case "stored":
			s.spool.ack(h.Offset)
		case "error":
			var e struct{ Error string }
			json.Unmarshal(line, &e)
			s.lastError = e.Error
		case "done":
			var d doneReply
			if json.Unmarshal(line, &d) == nil {
				s.done = &d
			}
		}
	}
	s.replies.Add(1)
	s.j.OnReply(Reply{Seq: h.Seq, Type: h.Type, Line: line})
}

// bodyReader is one request's body: the spool from off on. It feeds the
// watchdog (holding it while it waits for the producer, which is no stall)
// and waits for the bandwidth budget.
type bodyReader struct {
	s    *Stream
	off  int64
	sent atomic.Int64 // read by the request's goroutine while the transport sends
	stop func() bool
	ctx  context.Context
	wd   *watchdog.Watchdog

	mu  sync.Mutex
	err error // the error that ended the body, io.EOF at its end
}

// failure returns the error that ended the body, nil while it runs.
func (b *bodyReader) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *bodyReader) Read(p []byte) (int, error) {
	stop := b.stop
	if stop == nil {
		stop = func() bool { return false }
	}
	n, err := b.s.spool.readAt(b.s.j.Cap(p), b.off, stop, b.waiting)
	if werr := b.s.j.Took(b.ctx, b.wd, n); werr != nil {
		n, err = 0, werr
	}
	b.off += int64(n)
	b.sent.Add(int64(n))
	if n > 0 {
		if !b.s.j.Resumable {
			b.s.spool.ack(b.off) // nothing is ever sent twice
		}
	}
	if err != nil {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}
	return n, err
}

// waiting is told when the body starts and stops waiting for the producer.
func (b *bodyReader) waiting(w bool) { b.hold(w) }

func (b *bodyReader) hold(on bool) {
	if b.wd == nil {
		return
	}
	if on {
		b.wd.Hold()
	} else {
		b.wd.Release()
	}
}
