package data

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// A FormPart is one part of a multipart/form-data body: a text field, or
// a file streamed from disk.
type FormPart struct {
	Name  string
	Value string // a text field's
	// Path is a file's; FileName, if set, is what the part calls it
	// (else Path's base name), and ContentType its type (else from its
	// name, else from its first bytes).
	Path, FileName, ContentType string
}

// Form is the multipart/form-data body of parts, with its Content-Type:
// files are read from disk at each attempt, and its length is exact. A
// file that changes size before it is sent fails the attempt.
func Form(parts []FormPart) (*Body, string, error) {
	b := make([]byte, 16)
	rand.Read(b)
	boundary := "ferry-" + hex.EncodeToString(b)
	type section struct {
		text string
		path string
		size int64
	}
	var secs []section
	var total int64
	add := func(s section) {
		secs = append(secs, s)
		total += int64(len(s.text)) + s.size
	}
	for i, p := range parts {
		if p.Name == "" || strings.ContainsAny(p.Name, "\r\n") {
			return nil, "", fmt.Errorf("form part %d: want a name of one line", i+1)
		}
		head := fmt.Sprintf("--%s\r\nContent-Disposition: form-data; name=\"%s\"", boundary, quoteEscape(p.Name))
		if p.Path == "" {
			add(section{text: head + "\r\n\r\n" + p.Value + "\r\n"})
			continue
		}
		size, err := regularSize(p.Path)
		if err != nil {
			return nil, "", fmt.Errorf("form part %q: %w", p.Name, err)
		}
		name := p.FileName
		if name == "" {
			name = filepath.Base(p.Path)
		}
		ct := p.ContentType
		if ct == "" {
			if ct, err = fileType(p.Path, name); err != nil {
				return nil, "", fmt.Errorf("form part %q: %w", p.Name, err)
			}
		}
		if strings.ContainsAny(ct, "\r\n") {
			return nil, "", fmt.Errorf("form part %q: want a type of one line", p.Name)
		}
		add(section{text: fmt.Sprintf("%s; filename=\"%s\"\r\nContent-Type: %s\r\n\r\n", head, quoteEscape(name), ct)})
		add(section{path: p.Path, size: size})
		add(section{text: "\r\n"})
	}
	add(section{text: "--" + boundary + "--\r\n"})
	body := &Body{Size: total, Open: func() (io.ReadCloser, error) {
		var readers []io.Reader
		var files []*os.File
		closeAll := func() {
			for _, f := range files {
				f.Close()
			}
		}
		for _, s := range secs {
			if s.path == "" {
				readers = append(readers, strings.NewReader(s.text))
				continue
			}
			f, err := openSized(s.path, s.size)
			if err != nil {
				closeAll()
				return nil, err
			}
			files = append(files, f)
			readers = append(readers, io.LimitReader(f, s.size))
		}
		return struct {
			io.Reader
			io.Closer
		}{io.MultiReader(readers...), closerFunc(closeAll)}, nil
	}}
	return body, "multipart/form-data; boundary=" + boundary, nil
}

// File is the body of the regular file at path, opened anew for each
// attempt; its length is the file's now.
func File(path string) (*Body, error) {
	size, err := regularSize(path)
	if err != nil {
		return nil, err
	}
	return &Body{Size: size, Open: func() (io.ReadCloser, error) { return openSized(path, size) }}, nil
}

// regularSize is the size of the regular file at path.
func regularSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", path)
	}
	return fi.Size(), nil
}

// openSized opens the file at path, which must still be size bytes long:
// a body's length is sent before the body.
func openSized(path string, size int64) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		f.Close()
		return nil, fmt.Errorf("ferry: %s changed size since the request was made", path)
	}
	return f, nil
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// fileType is a file's media type: by its name's extension, else by its
// first 512 bytes.
func fileType(path, name string) (string, error) {
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	return http.DetectContentType(head[:n]), nil
}

// quoteEscape escapes what would end a quoted header parameter, as
// mime/multipart does.
func quoteEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
