package stream

import (
	"errors"
	"io"
	"os"
	"sync"
)

// chunkSize is the unit of the spool's memory.
const chunkSize = 64 << 10

// ErrClosed is returned by writes after the stream was closed.
var ErrClosed = errors.New("stream: write after close")

// A spool holds what the producer wrote and the sender has not yet had
// acknowledged: bytes [base, written). At most limit of them stay in memory.
// Beyond that, a spool that retains (a resumable stream, which must keep
// unacknowledged bytes for a resend and must not stall a live recording)
// spills to a temporary file; one that does not blocks the producer until
// the sender has taken bytes out, so a slow network pushes back on the
// writer and nothing grows without bound.
type spool struct {
	mu      sync.Mutex
	cond    *sync.Cond
	limit   int64
	retain  bool
	tempDir string

	base    int64    // first byte still held
	written int64    // bytes written so far
	chunks  [][]byte // memory: bytes [base, memEnd), in chunks of chunkSize
	memEnd  int64
	file    *os.File // bytes [fileStart, written) once spilling
	fileOff int64    // stream offset of the file's first byte
	closed  bool     // the producer finished
	err     error    // the stream was aborted
}

func newSpool(limit int64, retain bool, tempDir string) *spool {
	s := &spool{limit: max(limit, chunkSize), retain: retain, tempDir: tempDir}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Write appends p. It blocks while a non-retaining spool is full.
func (s *spool) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for len(p) > 0 {
		if s.err != nil {
			return n, s.err
		}
		if s.closed {
			return n, ErrClosed
		}
		room := s.limit - (s.memEnd - s.base)
		if s.file != nil || room <= 0 {
			if !s.retain {
				s.cond.Wait()
				continue
			}
			if err := s.spill(p); err != nil {
				return n, err
			}
			n += len(p)
			break
		}
		k := int(min(room, int64(len(p))))
		s.appendMem(p[:k])
		p = p[k:]
		n += k
	}
	s.cond.Broadcast()
	return n, nil
}

func (s *spool) appendMem(p []byte) {
	for len(p) > 0 {
		if len(s.chunks) == 0 || len(s.chunks[len(s.chunks)-1]) == chunkSize {
			s.chunks = append(s.chunks, make([]byte, 0, chunkSize))
		}
		last := &s.chunks[len(s.chunks)-1]
		k := min(chunkSize-len(*last), len(p))
		*last = append(*last, p[:k]...)
		p = p[k:]
		s.memEnd += int64(k)
		s.written += int64(k)
	}
}

// spill appends p to the temporary file, creating it if needed.
func (s *spool) spill(p []byte) error {
	if s.file == nil {
		f, err := os.CreateTemp(s.tempDir, "ferry-stream-*")
		if err != nil {
			return err
		}
		os.Remove(f.Name()) // unnamed: gone with the process
		s.file, s.fileOff = f, s.written
	}
	if _, err := s.file.WriteAt(p, s.written-s.fileOff); err != nil {
		return err
	}
	s.written += int64(len(p))
	return nil
}

// Close marks the end of the stream.
func (s *spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.cond.Broadcast()
	return nil
}

// abort fails the producer's writes and the readers with err.
func (s *spool) abort(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.cond.Broadcast()
}

// release frees the spool's memory and file.
func (s *spool) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chunks = nil
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}

// ack drops the bytes before off: the server has them.
func (s *spool) ack(off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ackLocked(off)
}

func (s *spool) ackLocked(off int64) {
	off = min(off, s.written)
	if off <= s.base {
		return
	}
	s.base = off
	// Whole chunks before base go.
	start := s.memEnd - s.memLen()
	for len(s.chunks) > 0 && start+int64(len(s.chunks[0])) <= off {
		if len(s.chunks) == 1 && s.file == nil && start+int64(len(s.chunks[0])) == s.memEnd {
			// The chunk being filled: empty it and keep it, rather
			// than allocate another for every small write.
			s.chunks[0] = s.chunks[0][:0]
			break
		}
		start += int64(len(s.chunks[0]))
		s.chunks = s.chunks[1:]
	}
	if s.file != nil && off >= s.written {
		// Everything spilled is acknowledged: back to memory.
		s.file.Close()
		s.file = nil
		s.memEnd = s.written
	}
	s.cond.Broadcast()
}

// memLen is the bytes in the memory chunks.
func (s *spool) memLen() int64 {
	var n int64
	for _, c := range s.chunks {
		n += int64(len(c))
	}
	return n
}

// state reports the acknowledged offset, the bytes written and whether the
// producer finished.
func (s *spool) state() (base, written int64, closed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base, s.written, s.closed, s.err
}

// readAt copies bytes at off into p, waiting until some are there (telling
// waiting, if set, when it starts and stops waiting). It returns io.EOF at
// the end of a closed stream, and errStopped once stop reports true
// (checked whenever the spool changes; see wake).
func (s *spool) readAt(p []byte, off int64, stop func() bool, waiting func(bool)) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	waited := false
	defer func() {
		if waited {
			waiting(false)
		}
	}()
	for {
		if s.err != nil {
			return 0, s.err
		}
		if stop() {
			return 0, errStopped
		}
		if off < s.base {
			return 0, errors.New("stream: read before the acknowledged offset")
		}
		if off < s.written {
			break
		}
		if s.closed {
			return 0, io.EOF
		}
		if waiting != nil && !waited {
			waited = true
			waiting(true)
		}
		s.cond.Wait()
	}
	memStart := s.memEnd - s.memLen()
	if off < s.memEnd {
		rel := off - memStart
		for _, c := range s.chunks {
			if rel < int64(len(c)) {
				return copy(p, c[rel:]), nil
			}
			rel -= int64(len(c))
		}
	}
	k := int(min(int64(len(p)), s.written-off))
	return s.file.ReadAt(p[:k], off-s.fileOff)
}

// wake lets readers re-check their stop conditions.
func (s *spool) wake() {
	s.mu.Lock()
	s.cond.Broadcast()
	s.mu.Unlock()
}

var errStopped = errors.New("stream: request body stopped")
