package resumable

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"mime/multipart"
	"net/http"

	"github.com/ferryhq/ferry/server/store"
)

// FormFile describes one file stored from a multipart/form-data upload.
type FormFile struct {
	Field  string `json:"field"`  // form field name
	Name   string `json:"name"`   // sanitised file name
	Size   int64  `json:"size"`   // bytes stored
	SHA256 string `json:"sha256"` // hex digest of the bytes stored
	ID     string `json:"id"`     // upload ID
	URL    string `json:"url"`    // where to download it (GET)
	Type   string `json:"type,omitempty"`
}

// FormResult is the JSON body PostForm answers with.
type FormResult struct {
	Files []FormFile `json:"files"`
}

// maxFieldBytes bounds what is read of a form field that is not a file;
// such fields are ignored.
const maxFieldBytes = 1 << 20

// PostForm stores every file of a multipart/form-data request as a
// finished upload and answers 201 with a [FormResult]. Parts are streamed
// to the store as they arrive (mime/multipart's NextPart), so memory does
// not grow with their size. Config.MaxSize bounds the files of one
// request together: the file that would pass it fails the request with
// 413. A file cut short is removed. Files stored before a failure stay,
// and are downloadable at their URL.
func (h *Handler) PostForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if h.decl == nil {
		writeProblem(w, r, ErrNotImplemented.with("uploads of unknown length"))
		return
	}
	content := &contentErr{ReadCloser: r.Body}
	r.Body = content
	mr, err := r.MultipartReader()
	if err != nil {
		writeProblem(w, r, ErrNotMultipart.with("%v", err))
		return
	}
	res := FormResult{Files: []FormFile{}}
	left := h.sizeLimit() // for the files of this request together
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			h.formFail(w, r, res, content.failure(ErrMalformedForm.with("%v", err)))
			return
		}
		if part.FileName() == "" {
			_, err := io.Copy(io.Discard, io.LimitReader(part, maxFieldBytes))
			part.Close()
			if err != nil {
				h.formFail(w, r, res, content.failure(ErrMalformedForm.with("%v", err)))
				return
			}
			continue
		}
		if e := h.allowCreation(w, r); e != nil {
			part.Close()
			h.formFail(w, r, res, e)
			return
		}
		f, err := h.storePart(r.Context(), part, left)
		part.Close()
		if err != nil {
			if errors.Is(err, errBodyRead) && content.err == nil {
				// The content arrived whole; the form in it is cut short.
				err = ErrMalformedForm.with("the form ends inside a file part")
			}
			h.formFail(w, r, res, err)
			return
		}
		left -= f.Size
		f.URL = h.url(r, f.ID)
		res.Files = append(res.Files, f)
	}
	if len(res.Files) == 0 {
		writeProblem(w, r, ErrNoFiles)
		return
	}
	body, _ := json.Marshal(res)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(append(body, '\n'))
}

// storePart streams one file part of at most limit bytes into a new
// upload.
func (h *Handler) storePart(ctx context.Context, part *multipart.Part, limit int64) (FormFile, error) {
	info := store.Info{
		ID:             store.NewID(),
		SizeIsDeferred: true,
		Name:           SanitizeFileName(part.FileName()),
		ContentType:    validMediaType(part.Header.Get("Content-Type")),
	}
	record := store.Footprint(info)
	if e := h.takeStorage(record); e != nil {
		return FormFile{}, e
	}
	up, err := h.store.NewUpload(ctx, info)
	if err != nil {
		h.storage.Release(record)
		return FormFile{}, err
	}
	sum := sha256.New()
	counted := &storageReader{r: &bodyErr{&maxReader{r: part, n: limit, err: errMaxSize}}, s: h.storage}
	n, err := up.WriteChunk(ctx, 0, io.TeeReader(counted, sum))
	h.storage.Release(counted.taken - n)
	if err == nil {
		err = h.decl.DeclareLength(ctx, up, n)
	}
	if err == nil {
		err = up.FinishUpload(ctx)
	}
	if err != nil {
		// A form upload cannot be resumed: what was stored is useless.
		if h.term != nil {
			h.terminate(context.WithoutCancel(ctx), up)
		}
		return FormFile{}, err
	}
	h.log.Info("upload finished", "id", info.ID, "size", n, "name", info.Name, "form", part.FormName())
	return FormFile{Field: part.FormName(), Name: info.Name, Size: n, SHA256: hexSum(sum), ID: info.ID, Type: info.ContentType}, nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// bodyErr marks read errors as errors of the request content.
type bodyErr struct{ r io.Reader }

func (b *bodyErr) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, errMaxSize) && !errors.Is(err, errStorageFull) {
		err = bodyError(err)
	}
	return n, err
}

// contentErr remembers how the request content itself failed, if it did:
// a part that ends early is a client that went away when the content
// failed, and a malformed form when it arrived whole.
type contentErr struct {
	io.ReadCloser
	err error
}

func (c *contentErr) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// failure is why the form failed to parse: the content's own failure, if
// it had one, or else malformed, the form's.
func (c *contentErr) failure(malformed *Error) error {
	if c.err != nil {
		return bodyError(c.err)
	}
	return malformed
}

// formFail answers a failed form upload. The files already stored are
// listed in the problem's "files" member.
func (h *Handler) formFail(w http.ResponseWriter, r *http.Request, res FormResult, err error) {
	e, client := toError(err)
	if !client {
		h.log.Error("form upload failed", "err", err)
	}
	if len(res.Files) > 0 {
		e = e.withExtra("files", res.Files)
	}
	writeProblem(w, r, e)
}
