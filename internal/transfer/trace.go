package transfer

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"
)

// Recorder fills a TransactionMetrics from net/http/httptrace callbacks.
// Callbacks may run on transport goroutines, hence the mutex.
type Recorder struct {
	mu   sync.Mutex
	m    TransactionMetrics
	conn net.Conn
	// OnActivity, if set, is called whenever bytes move on the connection
	// before the body (headers written, first response byte); the idle
	// watchdog uses it.
	OnActivity func()
}

// Proxied records that the transaction's request goes through the proxy
// at u; its credentials are left out.
func (r *Recorder) Proxied(u *url.URL) {
	if u == nil {
		return
	}
	shown := *u
	shown.User = nil
	r.set(func(m *TransactionMetrics) { m.Proxy = shown.String() })
}

// NewRecorder starts recording a transaction for req.
func NewRecorder(req *http.Request) *Recorder {
	return &Recorder{m: TransactionMetrics{Method: req.Method, URL: req.URL.String(), Start: time.Now()}}
}

func (r *Recorder) set(f func(m *TransactionMetrics)) {
	r.mu.Lock()
	f(&r.m)
	r.mu.Unlock()
}

func (r *Recorder) activity() {
	if r.OnActivity != nil {
		r.OnActivity()
	}
}

// WithContext returns ctx carrying the trace hooks.
func (r *Recorder) WithContext(ctx context.Context) context.Context {
	return TraceTo(ctx, func() *Recorder { return r })
}

// TraceTo returns ctx carrying trace hooks that report to the recorder cur
// returns at the time: a redirect hop hands the chain to a new one.
func TraceTo(ctx context.Context, cur func() *Recorder) context.Context {
	now := time.Now
	set := func(f func(m *TransactionMetrics)) { cur().set(f) }
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { set(func(m *TransactionMetrics) { m.DNSStart = now() }) },
		DNSDone:  func(httptrace.DNSDoneInfo) { set(func(m *TransactionMetrics) { m.DNSDone = now() }) },
		ConnectStart: func(string, string) {
			set(func(m *TransactionMetrics) {
				if m.ConnectStart.IsZero() {
					m.ConnectStart = now()
				}
			})
		},
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				set(func(m *TransactionMetrics) { m.ConnectDone = now() })
			}
		},
		TLSHandshakeStart: func() { set(func(m *TransactionMetrics) { m.TLSStart = now() }) },
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			set(func(m *TransactionMetrics) { m.TLSDone = now() })
		},
		GotConn: func(info httptrace.GotConnInfo) {
			r := cur()
			r.set(func(m *TransactionMetrics) {
				m.GotConn = now()
				m.ReusedConn = info.Reused
				r.conn = info.Conn
				if info.Conn != nil {
					m.RemoteAddr = info.Conn.RemoteAddr().String()
					m.LocalAddr = info.Conn.LocalAddr().String()
				}
			})
		},
		WroteHeaderField: func(key string, values []string) {
			n := int64(len(key) + 4) // ": " and CRLF
			for i, v := range values {
				if i > 0 {
					n += 2
				}
				n += int64(len(v))
			}
			set(func(m *TransactionMetrics) { m.RequestHeaderBytes += n })
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			set(func(m *TransactionMetrics) { m.RequestWritten = now() })
			cur().activity()
		},
		GotFirstResponseByte: func() {
			set(func(m *TransactionMetrics) { m.FirstByte = now() })
			cur().activity()
		},
	})
}

// Conn is the connection the request got, nil before it got one. Over
// HTTP/1 it is the request's alone until its response body is done.
func (r *Recorder) Conn() net.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn
}

// Response records the response head.
func (r *Recorder) Response(resp *http.Response) {
	n := int64(len(resp.Proto) + len(resp.Status) + 3)
	for k, vs := range resp.Header {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	r.set(func(m *TransactionMetrics) {
		m.StatusCode = resp.StatusCode
		m.Proto = resp.Proto
		m.ResponseHeaderBytes = n + 2
		if resp.TLS != nil {
			m.TLSVersion = tls.VersionName(resp.TLS.Version)
			m.TLSCipherSuite = tls.CipherSuiteName(resp.TLS.CipherSuite)
		}
		if resp.Request != nil {
			m.URL = resp.Request.URL.String()
		}
	})
}

// Finish closes the record with the body bytes read and the error, if any,
// and returns it.
func (r *Recorder) Finish(bodyBytes int64, err error) TransactionMetrics {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m.End = time.Now()
	r.m.ResponseBodyBytes = bodyBytes
	if err != nil {
		r.m.Err = err.Error()
	}
	return r.m
}

// Conn names the connection the transaction ran on ("" if it got none),
// so that a task can count the connections it used. Not whether a request
// dialled: the transport may dial for one request and then give it a
// connection that came back to the pool meanwhile, and hand the new one to
// another request, which sees it as reused.
func (t TransactionMetrics) Conn() string {
	if t.GotConn.IsZero() {
		return ""
	}
	return t.LocalAddr + " " + t.RemoteAddr
}
