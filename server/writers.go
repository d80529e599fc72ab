package server

import (
	"io"
	"net/http"
)

// The ResponseWriter wrappers below implement io.ReaderFrom so that
// http.ServeContent's copy still reaches the connection's ReadFrom (sendfile
// on HTTP/1.1), Flush for streaming handlers, and Unwrap for
// http.ResponseController.

// logWriter records the final status and the body bytes for the access log.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *logWriter) WriteHeader(code int) {
	// 1xx responses are interim (RFC 9110 §15.2); the final status follows.
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *logWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := readFrom(w.ResponseWriter, src)
	w.bytes += n
	return n, err
}

func (w *logWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hookWriter calls hook once, just before the final status goes out, so a
// handler can add headers that depend on the status another function chose.
type hookWriter struct {
	http.ResponseWriter
	hook func(status int)
	done bool
}

func (w *hookWriter) WriteHeader(code int) {
	if !w.done && code >= 200 {
		w.done = true
		w.hook(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *hookWriter) Write(p []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *hookWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return readFrom(w.ResponseWriter, src)
}

func (w *hookWriter) Flush() {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *hookWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// readFrom copies src to w through w's own ReadFrom when it has one.
func readFrom(w http.ResponseWriter, src io.Reader) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	// Hide any ReadFrom of the wrapper type so io.Copy cannot recurse.
	return io.Copy(struct{ io.Writer }{w}, src)
}
