package transfer

import "time"

// TransactionMetrics describes one HTTP request/response exchange, in the
// spirit of URLSessionTaskTransactionMetrics. Instants are zero when the
// phase did not happen (no DNS lookup for an IP literal, no dial on a reused
// connection, no TLS for http).
type TransactionMetrics struct {
	Method     string `json:"method"`
	URL        string `json:"url"`
	StatusCode int    `json:"status,omitempty"`
	Proto      string `json:"proto,omitempty"`
	RemoteAddr string `json:"remote_addr,omitempty"`
	LocalAddr  string `json:"local_addr,omitempty"`
	ReusedConn bool   `json:"reused_conn"`
	// TLSVersion and TLSCipherSuite are what the connection negotiated,
	// e.g. "TLS 1.3" and "TLS_AES_128_GCM_SHA256"; empty over plain
	// http.
	TLSVersion     string `json:"tls_version,omitempty"`
	TLSCipherSuite string `json:"tls_cipher_suite,omitempty"`
	// Proxy is the proxy the request went through, as a URL without its
	// credentials; empty when it went direct.
	Proxy string `json:"proxy,omitempty"`

	Start          time.Time `json:"start"`
	DNSStart       time.Time `json:"dns_start,omitzero"`
	DNSDone        time.Time `json:"dns_done,omitzero"`
	ConnectStart   time.Time `json:"connect_start,omitzero"`
	ConnectDone    time.Time `json:"connect_done,omitzero"`
	TLSStart       time.Time `json:"tls_start,omitzero"`
	TLSDone        time.Time `json:"tls_done,omitzero"`
	GotConn        time.Time `json:"got_conn,omitzero"`
	RequestWritten time.Time `json:"request_written,omitzero"`
	FirstByte      time.Time `json:"first_byte,omitzero"`
	End            time.Time `json:"end,omitzero"`

	RequestHeaderBytes  int64 `json:"request_header_bytes"`
	RequestBodyBytes    int64 `json:"request_body_bytes"`
	ResponseHeaderBytes int64 `json:"response_header_bytes"`
	ResponseBodyBytes   int64 `json:"response_body_bytes"`

	Err string `json:"error,omitempty"`
}

// Duration is End-Start, or 0 when the transaction has not ended.
func (t TransactionMetrics) Duration() time.Duration {
	if t.End.IsZero() {
		return 0
	}
	return t.End.Sub(t.Start)
}
