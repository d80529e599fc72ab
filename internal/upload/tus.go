package upload

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/dialect"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

const (
	// probeSize is the first append of an upload: small enough to finish
	// fast on a slow link, large enough to measure the speed.
	probeSize = 4 << 20
	// appendTarget is how long later appends aim to take at the measured
	// speed: long enough that a round trip per append is noise, short
	// enough that a failure loses little.
	appendTarget = 2 * time.Second
	minAppend    = 1 << 20
	// maxAppend bounds an append however fast the link: a server that
	// checks each append's digest must hold all of it before keeping any,
	// and a cut append is lost whole.
	maxAppend = 64 << 20
)

// Errors of the tus exchange that steer the engine rather than end it.
var (
	// errOffsetConflict: the server holds a different offset (409); ask it.
	errOffsetConflict = &steerError{"the server's offset differs from ours", true}
	// errLocked: another request holds the upload (423); wait and retry.
	errLocked = &steerError{"the upload is locked by another request", true}
	// errChecksum: the server found the append corrupted (460); resend it.
	errChecksum = &steerError{"the server rejected the append's checksum", true}
	// errGone: the upload no longer exists (404/410); start a new one.
	errGone = &steerError{"the upload no longer exists on the server", false}
)

type steerError struct {
	msg       string
	retryable bool
}

func (e *steerError) Error() string   { return "ferry: " + e.msg }
func (e *steerError) Retryable() bool { return e.retryable }

// speed remembers the measured upload speed per connection.
type speed struct{ bytesPerSec float64 }

func (s *speed) observe(n int64, d time.Duration) {
	if d > 0 && n >= minAppend/2 {
		s.bytesPerSec = float64(n) / d.Seconds()
	}
}

// next is the size of the next append: the probe first, then appendTarget
// worth at the measured speed, within the server's limit.
func (r *run) appendSize(sp *speed) int64 {
	if r.j.ChunkSize > 0 {
		return r.j.ChunkSize
	}
	if sp.bytesPerSec == 0 {
		return probeSize
	}
	n := int64(sp.bytesPerSec * appendTarget.Seconds())
	n = min(maxAppend, max(minAppend, n))
	if r.caps.maxSize > 0 {
		n = min(n, r.caps.maxSize)
	}
	return n
}

// dialect is the resumable protocol the upload speaks.
func (r *run) dialect() dialect.Dialect {
	if r.st.Protocol == IETF {
		return dialect.IETF6
	}
	return dialect.Tus
}

// metadata encodes tus Upload-Metadata: key base64(value), comma-separated.
func (r *run) metadata() string {
	meta := map[string]string{"filename": filepath.Base(r.j.Path)}
	for k, v := range r.j.Metadata {
		meta[k] = v
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+" "+base64.StdEncoding.EncodeToString([]byte(meta[k])))
	}
	return strings.Join(parts, ",")
}

// create makes a new tus upload of n bytes; partial marks it as a segment
// to be concatenated later.
func (r *run) create(ctx context.Context, n int64, partial bool) (string, error) {
	h := dialect.Tus.Create(n, false)
	if partial {
		h.Set("Upload-Concat", "partial")
		return r.post(ctx, h)
	}
	h.Set("Upload-Metadata", r.metadata())
	if err := r.setReprDigest(h); err != nil {
		return "", err
	}
	return r.post(ctx, h)
}

// post creates an upload at the endpoint with the headers h and returns
// its location.
func (r *run) post(ctx context.Context, h http.Header) (string, error) {
	var loc string
	err := r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
		resp, _, err := r.exchange(actx, wd, http.MethodPost, r.j.URL, h, nil)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusCreated {
			return transfer.ResponseError(resp)
		}
		loc, err = resolve(resp.Request.URL, resp.Header.Get("Location"))
		return err
	})
	return loc, err
}

// offset asks the server how much of the upload at loc it holds (HEAD).
func (r *run) offset(ctx context.Context, loc string) (int64, error) {
	var off int64
	err := r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
		resp, _, err := r.exchange(actx, wd, http.MethodHead, loc, r.dialect().Header(), nil)
		if err != nil {
			return err
		}
		switch resp.StatusCode {
		case http.StatusOK, http.StatusNoContent:
		case http.StatusNotFound, http.StatusGone, http.StatusForbidden:
			return errGone
		case http.StatusLocked:
			// A request of an earlier run still holds the upload on the
			// server; it lets go once it notices the dropped connection.
			return errLocked
		default:
			return transfer.ResponseError(resp)
		}
		off, _, err = r.dialect().Offset(resp.Header)
		if err != nil {
			return errors.New("server answered HEAD without a valid Upload-Offset")
		}
		return nil
	})
	return off, err
}

// appendAt sends bytes [start+off, start+off+n) of the file to the upload
// at loc, whose server-side offset is off, and returns the new offset.
func (r *run) appendAt(ctx context.Context, loc string, start, off, n int64, last bool) (int64, error) {
	var newOff int64
	err := r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
		body := &section{f: r.file, off: start + off, n: n}
		h := r.dialect().Append(off, last)
		if r.st.Protocol == IETF {
			// RFC 9530 §2: the digest of this append's content, so the
			// server can refuse bytes damaged on the way.
			if d := contentDigest(body); d != "" {
				h.Set("Content-Digest", d)
			}
		} else if alg, sum := r.checksum(body); alg != "" {
			h.Set("Upload-Checksum", alg+" "+sum)
		}
		resp, _, err := r.exchange(actx, wd, http.MethodPatch, loc, h, body)
		if err != nil {
			return err
		}
		switch resp.StatusCode {
		case http.StatusOK, http.StatusCreated, http.StatusNoContent:
		case http.StatusConflict:
			return errOffsetConflict
		case http.StatusLocked:
			return errLocked
		case 460:
			return errChecksum
		case http.StatusNotFound, http.StatusGone:
			return errGone
		default:
			return transfer.ResponseError(resp)
		}
		newOff, err = ackedOffset(resp.Header, off, n)
		return err
	})
	if err == nil && newOff == off && n > 0 {
		// A server that takes every append and keeps none of it would
		// hold the upload in a loop: a failure, bounded by the retries.
		return off, errNothingAcked
	}
	return newOff, err
}

// errNothingAcked: the server answered an append with the offset it
// started at.
var errNothingAcked = &transfer.Transient{Err: errors.New("the server acknowledged none of an append")}

// ackedOffset reads the offset a server acknowledged for an append of n
// bytes at off: it must be in [off, off+n], since the server can neither
// lose bytes it had nor keep more than it was sent.
func ackedOffset(h http.Header, off, n int64) (int64, error) {
	got, _, err := dialect.Tus.Offset(h)
	if err != nil || got < off || got-off > n {
		return 0, errors.New("server acknowledged an impossible Upload-Offset")
	}
	return got, nil
}

// checksum computes the tus checksum of an append with the best algorithm
// the server accepts (RFC 9530 Content-Digest is the IETF dialect's).
func (r *run) checksum(s *section) (alg, sum string) {
	var h hash.Hash
	switch {
	case r.caps.checksums["sha256"]:
		alg, h = "sha256", sha256.New()
	case r.caps.checksums["sha1"]:
		alg, h = "sha1", sha1.New()
	default:
		return "", ""
	}
	if _, err := io.Copy(h, s.reader()); err != nil {
		return "", ""
	}
	return alg, base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// contentDigest is the Content-Digest field of an append: sha-256 of its bytes.
func contentDigest(s *section) string {
	h := sha256.New()
	if _, err := io.Copy(h, s.reader()); err != nil {
		return ""
	}
	return "sha-256=:" + base64.StdEncoding.EncodeToString(h.Sum(nil)) + ":"
}

// sendSingle uploads the file as one upload, append after append, asking
// the server for its offset after any failure.
func (r *run) sendSingle(ctx context.Context) (stateFunc, error) {
	r.op = "upload"
	var sp speed
	resync := r.st.Location != ""
	err := r.retrying(ctx, func(ctx context.Context) (bool, error) {
		if r.st.Location == "" {
			loc, err := r.createSingle(ctx)
			if err != nil {
				return false, err
			}
			r.st.Location, r.st.Offset, resync = loc, 0, false
			r.created(-1)
			if err := r.save(); err != nil {
				return false, err
			}
		}
		if resync {
			off, err := r.offset(ctx, r.st.Location)
			if errors.Is(err, errGone) {
				r.j.Emit(transfer.RestartEvent{Discarded: r.st.Offset, Reason: "the upload expired on the server"})
				r.st.Location, r.st.Offset = "", 0
				r.j.Meter.Reset(0, r.st.Size)
				return false, errGone
			}
			if err != nil {
				return false, err
			}
			if off > r.st.Size {
				return false, errors.New("server holds more bytes than the file has")
			}
			r.st.Offset, resync = off, false
			r.save()
		}
		if r.resumedFrom < 0 {
			r.resumedFrom = r.st.Offset
		}
		progressed := false
		for r.st.Offset < r.st.Size || r.st.Size == 0 && !progressed {
			r.j.Meter.Reset(r.st.Offset, r.st.Size)
			n := min(r.appendSize(&sp), r.st.Size-r.st.Offset)
			t0 := time.Now()
			off, err := r.appendAt(ctx, r.st.Location, 0, r.st.Offset, n, r.st.Offset+n == r.st.Size)
			if err != nil {
				resync = true
				return progressed, err
			}
			sp.observe(off-r.st.Offset, time.Since(t0))
			progressed = r.passed(-1, off) || progressed
			r.st.Offset = off
			if err := r.save(); err != nil {
				return progressed, err
			}
			if r.st.Size == 0 {
				break
			}
		}
		return progressed, nil
	})
	if err != nil {
		if errors.Is(err, errGone) {
			r.gone++
			if r.j.Retry.Exhausted(r.gone) {
				return nil, err
			}
			return r.sendSingle, nil // start a new upload
		}
		return nil, err
	}
	r.res.Location = r.st.Location
	return r.finish, nil
}

func (r *run) createSingle(ctx context.Context) (string, error) {
	if r.st.Protocol == IETF {
		return r.ietfCreate(ctx)
	}
	return r.create(ctx, r.st.Size, false)
}

// finish records the result and forgets the state: the server has it all.
func (r *run) finish(ctx context.Context) (stateFunc, error) {
	r.op = "finish"
	if err := r.checkUnchanged(); err != nil {
		return nil, err
	}
	sum, err := r.sha256()
	if err != nil {
		return nil, err
	}
	r.res.URL, r.res.Path, r.res.Size = r.j.URL, r.j.Path, r.st.Size
	if p := r.proto.Load(); p != nil {
		r.res.Proto = *p
	}
	r.res.ResumedFrom = max(r.resumedFrom, 0)
	r.res.Uploaded = r.j.Meter.Moved()
	r.res.SHA256 = sum
	if r.j.KeepState {
		return nil, nil
	}
	return nil, r.j.Saved.Remove()
}

// checkUnchanged fails if the file changed while it was being sent: the
// server would hold a mix of two versions.
func (r *run) checkUnchanged() error {
	fi, err := r.file.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != r.st.Size || fi.ModTime().UnixNano() != r.st.ModTime {
		r.j.Saved.Remove()
		return ErrFileChanged
	}
	return nil
}

func (r *run) sha256() (string, error) {
	if !r.j.Hash {
		return "", nil
	}
	sum, err := r.fileDigest()
	return hexString(sum), err
}

// fileDigest is the SHA-256 of the whole file, computed once.
func (r *run) fileDigest() ([]byte, error) {
	r.digestOnce.Do(func() {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(r.file, 0, r.st.Size)); err != nil {
			r.digestErr = err
			return
		}
		r.digest = h.Sum(nil)
	})
	return r.digest, r.digestErr
}

// setReprDigest adds the whole file's RFC 9530 Repr-Digest to a request
// that creates the upload: a server that keeps it checks the complete
// upload against it, end to end; others ignore it.
func (r *run) setReprDigest(h http.Header) error {
	sum, err := r.fileDigest()
	if err != nil {
		return err
	}
	h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	return nil
}
