// Package server is ferry's origin: the [http.Handler] behind `ferry serve`.
//
// A [Server] serves the regular files below one directory to clients that
// fetch big files over bad networks, so it gives them everything they need to
// resume and to verify. [Serve] runs any handler on a listener with graceful
// shutdown, HTTP/2 with or without TLS, and a self-signed certificate on
// request.
//
// # Files
//
// GET and HEAD of /<path> answer with the file at <path> below [Config.Root].
// Every open goes through an [os.Root], so no request reaches a file outside
// the root: dot segments (also percent-encoded), backslashes, NUL bytes and
// empty segments are refused with 400 before routing, and symbolic links that
// lead out of the root are answered like missing files, with 404. Links that
// stay inside the root are followed. Directories are never listed.
//
// Responses follow RFC 9110: Accept-Ranges, single and multiple byte ranges
// (206, or 416 with "Content-Range: bytes */SIZE"), Last-Modified, and a strong
// ETag built from the file's device, inode, size and modification time, so it
// changes whenever the file is modified or replaced. That ETag is what a
// resuming client sends in If-Range; If-Match, If-None-Match, If-Modified-Since
// and If-Unmodified-Since are honoured as well. Bytes are served as stored:
// there is never a Content-Encoding.
//
// # Digests
//
// A request carrying Want-Repr-Digest (RFC 9530) gets a Repr-Digest of the
// whole file in the client's preferred algorithm among sha-256 and sha-512,
// on 200, 206 and HEAD alike, because it describes the representation rather
// than the bytes of one response. A segmented download asks on every range
// request, so digests are kept in a small cache keyed by path and ETag, and
// concurrent requests for a file not yet hashed wait for a single pass over
// it. Hashing streams the file; memory does not grow with file size.
//
// # Serving
//
// [Serve] puts any handler on a listener until its context is cancelled, then
// lets requests in flight finish. Plain TCP speaks HTTP/1.1 and h2c with prior
// knowledge on one port; with a certificate, or [Options.TLSSelfSigned], it
// speaks HTTP/1.1 and HTTP/2 negotiated by ALPN. [Options.Ready] learns the
// base URL once the port is open, which is how ":0" becomes usable.
//
// # Routes
//
// All routes are registered in one [http.ServeMux]:
//
//	GET, HEAD /healthz   200 "ok\n"
//	GET, HEAD /<path>    files below Config.Root
//
// Other methods get 405 with an Allow header. Each request is logged with
// [log/slog] once it is done: method, path, status, bytes, duration, remote
// address, protocol and the Range asked for.
package server
