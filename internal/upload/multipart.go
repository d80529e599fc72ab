package upload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// sendMultipart posts the file as multipart/form-data, streamed from disk
// with an exact Content-Length: no temporary copy, no buffer of the file.
// A POST is not idempotent, so a failed one is repeated only when it never
// took effect (transfer.Unprocessed): the host was not reached, or it said
// it did not act. Otherwise the error says what happened, and the caller
// decides.
func (r *run) sendMultipart(ctx context.Context) (stateFunc, error) {
	r.op = "upload"
	r.resumedFrom = 0
	field := r.j.FieldName
	if field == "" {
		field = "file"
	}
	b := make([]byte, 16)
	rand.Read(b)
	boundary := "ferry-" + hex.EncodeToString(b)
	head := fmt.Sprintf("--%s\r\nContent-Disposition: form-data; name=%q; filename=%q\r\nContent-Type: application/octet-stream\r\n\r\n",
		boundary, field, safeFilename(r.j.Path))
	tail := "\r\n--" + boundary + "--\r\n"
	body := &section{
		f:   &framed{head: head, file: r.file, size: r.st.Size, tail: tail},
		off: 0,
		n:   int64(len(head)) + r.st.Size + int64(len(tail)),
	}
	err := r.retrying(ctx, func(ctx context.Context) (bool, error) {
		err := r.attempt(ctx, func(actx context.Context, wd *watchdog.Watchdog) error {
			r.j.Meter.Reset(0, body.n)
			h := http.Header{"Content-Type": {"multipart/form-data; boundary=" + boundary}}
			resp, reply, err := r.exchange(actx, wd, http.MethodPost, r.j.URL, h, body)
			if err != nil {
				return err
			}
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return transfer.ResponseError(resp)
			}
			r.res.Response = reply
			return nil
		})
		if err != nil && !transfer.Unprocessed(err) {
			err = &transfer.Final{Err: err}
		}
		return false, err
	})
	if err != nil {
		return nil, err
	}
	return r.finish, nil
}

// framed is the multipart body as an io.ReaderAt: the part head, the file,
// the closing boundary.
type framed struct {
	head string
	file io.ReaderAt
	size int64
	tail string
}

func (f *framed) ReadAt(p []byte, off int64) (int, error) {
	h, t := int64(len(f.head)), int64(len(f.tail))
	total := h + f.size + t
	if off >= total {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < total {
		switch {
		case off < h:
			k := copy(p[n:], f.head[off:])
			n += k
			off += int64(k)
		case off < h+f.size:
			want := min(int64(len(p)-n), h+f.size-off)
			k, err := f.file.ReadAt(p[n:n+int(want)], off-h)
			n += k
			off += int64(k)
			if err != nil && err != io.EOF {
				return n, err
			}
			if k == 0 {
				return n, io.ErrUnexpectedEOF
			}
		default:
			k := copy(p[n:], f.tail[off-h-f.size:])
			n += k
			off += int64(k)
		}
	}
	if off >= total {
		return n, io.EOF
	}
	return n, nil
}

// safeFilename is the file's base name with the characters that would break
// a quoted header value replaced.
func safeFilename(path string) string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c == '"' || c == '\\' || c == 0x7f {
			return '_'
		}
		return c
	}, filepath.Base(path))
}

func hexString(b []byte) string { return hex.EncodeToString(b) }
