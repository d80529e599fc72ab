package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"syscall"
)

// serveFile answers GET and HEAD for a regular file below the root.
// http.ServeContent does the RFC 9110 work once the ETag is set: conditional
// requests (§13), Range and If-Range (§14), 206/416 with Content-Range.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" || strings.HasSuffix(name, "/") {
		writeError(w, ErrNotFound) // a directory: there are no listings
		return
	}
	f, fi, err := s.openServed(name)
	if err != nil {
		e := openError(err)
		if e != ErrNotFound {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "open file", slog.String("name", name), slog.Any("err", err))
		}
		writeError(w, e)
		return
	}
	defer f.Close()

	etag := fileETag(fi)
	h := w.Header()
	// ServeContent compares If-Range, If-Match and If-None-Match against the
	// ETag it finds here. The ETag is strong (RFC 9110 §8.8.3): the bytes of
	// the file are fixed for as long as it stays the same.
	h.Set("ETag", etag)
	// Bytes as stored, typed by name or content, never re-encoded.
	h.Del("Content-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")

	alg, wantDigest := wantedDigest(r.Header.Values("Want-Repr-Digest"))
	hw := &hookWriter{ResponseWriter: w, hook: func(status int) {
		switch status {
		case http.StatusOK, http.StatusPartialContent:
			// The digest is of the whole representation (RFC 9530 §3),
			// so it goes on 200 and 206 alike, and on HEAD. 304, 412 and
			// 416 carry none, which spares reading the file for them.
			if wantDigest {
				s.setReprDigest(r, h, name, etag, alg)
			}
		case http.StatusRequestedRangeNotSatisfiable:
			// A 416 SHOULD state the current length (RFC 9110 §15.5.17);
			// ServeContent does so only when no range overlaps the file,
			// not when the range set is malformed.
			if h.Get("Content-Range") == "" {
				h.Set("Content-Range", fmt.Sprintf("bytes */%d", fi.Size()))
			}
		}
	}}
	http.ServeContent(hw, rangeRequest(r), path.Base(name), fi.ModTime(), f)
}

// setReprDigest adds the Repr-Digest header for the file version etag names.
func (s *Server) setReprDigest(r *http.Request, h http.Header, name, etag string, alg digestAlg) {
	sum, err := s.digests.get(r.Context(), digestKey{name, etag, alg.name}, func(ctx context.Context) ([]byte, bool, error) {
		return s.hashFile(ctx, name, etag, alg)
	})
	if err != nil {
		// Repr-Digest is optional; a response without one is still
		// correct, so serve the file and log why there is none. Being
		// busy is no fault, and a flood of requests must not flood
		// the log with warnings.
		level := slog.LevelWarn
		if errors.Is(err, errDigestBusy) {
			level = slog.LevelDebug
		}
		s.log.LogAttrs(r.Context(), level, "repr-digest", slog.String("name", name), slog.Any("err", err))
		return
	}
	h.Set("Repr-Digest", formatDigest(alg.name, sum))
}

// rangeRequest returns r with its Range header in the form ServeContent
// understands. Range unit names are case-insensitive (RFC 9110 §14.1) where
// ServeContent only knows "bytes=", and a Range in a unit the server does
// not know MUST be ignored (§14.2) where ServeContent answers 416. A header
// without "=" is no ranges-specifier at all, and §14.2 lets it be rejected.
func rangeRequest(r *http.Request) *http.Request {
	unit, set, ok := strings.Cut(r.Header.Get("Range"), "=")
	if !ok || unit == "bytes" {
		return r
	}
	r = r.Clone(r.Context())
	if strings.EqualFold(unit, "bytes") {
		r.Header.Set("Range", "bytes="+set)
	} else {
		r.Header.Del("Range")
	}
	return r
}

// openError maps an error from openServed to what the client sees. A name the
// file system rejects (missing, through a file, a link loop or one leading
// out of the root) looks missing; only a failure of the system itself is a 500.
func openError(err error) *Error {
	errno, isErrno := errors.AsType[syscall.Errno](err)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return ErrForbidden
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotFound
	case isErrno:
		switch errno {
		case syscall.ENOTDIR, syscall.ELOOP, syscall.ENAMETOOLONG, syscall.EINVAL:
			return ErrNotFound
		}
		return ErrInternal // EMFILE, EIO and the like
	default:
		// os.Root reports an escape with an error of its own, not an errno.
		return ErrNotFound
	}
}

// fileETag derives a strong validator from what changes whenever the file
// is modified or replaced: device and inode (a rename over it), size, the
// modification time and the status change time, both in nanoseconds. The
// change time is what tells an in-place rewrite that kept the size and put
// the modification time back. Hashing them keeps inode numbers off the
// wire.
func fileETag(fi fs.FileInfo) string {
	dev, ino := fileID(fi)
	var b [40]byte
	binary.BigEndian.PutUint64(b[0:], dev)
	binary.BigEndian.PutUint64(b[8:], ino)
	binary.BigEndian.PutUint64(b[16:], uint64(fi.Size()))
	binary.BigEndian.PutUint64(b[24:], uint64(fi.ModTime().UnixNano()))
	binary.BigEndian.PutUint64(b[32:], uint64(changeTime(fi)))
	sum := sha256.Sum256(b[:])
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}
