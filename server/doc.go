// Package server is ferry's origin: the [http.Handler] behind `ferry serve`.
//
// A [Server] serves the regular files below one directory to clients that
// fetch big files over bad networks, so it gives them everything they need to
// resume and to verify; optionally it takes resumable uploads as well (see
// Uploads). [Serve] runs any handler on a listener with graceful
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
// What is not the operator's to publish is answered with 404 as well: ferry's
// state directories (Uploads, Streams and [Config.Hide]), recognised by
// identity however a request reaches them (a link, a bind mount, another
// spelling of the path), so uploads inside the root are served only through
// their own URLs; ferry's work files (NAME.part, NAME.ferry, .NAME.tmp*); and
// names starting with a dot, unless [Config.ServeDotFiles].
//
// Responses follow RFC 9110: Accept-Ranges, single and multiple byte ranges
// (206, or 416 with "Content-Range: bytes */SIZE"), Last-Modified, and a strong
// ETag built from the file's device, inode, size, modification time and status
// change time (ctime, in nanoseconds), so it changes whenever the file is
// modified or replaced, also by a rewrite in place that keeps the size and puts
// the modification time back. That ETag is what a resuming client sends in
// If-Range; If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since
// are honoured as well. Bytes are served as stored: there is never a
// Content-Encoding.
//
// # Digests
//
// A request carrying Want-Repr-Digest (RFC 9530) gets a Repr-Digest of the
// whole file in the client's preferred algorithm among sha-256 and sha-512,
// on 200, 206 and HEAD alike, because it describes the representation rather
// than the bytes of one response. A segmented download asks on every range
// request, so digests are kept in a small cache keyed by path and ETag, and
// concurrent requests for a file not yet hashed wait for a single pass over
// it. A digest is served only for the version it was computed from: the file
// is checked against the ETag before and after the pass, and a digest of a
// file changed less than two seconds before its pass began is not cached, as
// file systems stamp changes with a coarse clock. At most eight files are
// hashed at once; a request that would start another pass gets no
// Repr-Digest, so asking for digests of many big files (HEAD is enough)
// cannot make the server read them all together. Hashing streams the file;
// memory does not grow with file size.
//
// # Serving
//
// [Serve] puts any handler on a listener until its context is cancelled, then
// lets requests in flight finish. Plain TCP speaks HTTP/1.1 and h2c with prior
// knowledge on one port; with a certificate, or [Options.TLSSelfSigned], it
// speaks HTTP/1.1 and HTTP/2 negotiated by ALPN. [Options.Ready] learns the
// base URL once the port is open, which is how ":0" becomes usable.
//
// # Uploads
//
// With [Config.Uploads] (a directory, kept by a filestore) or
// [Config.UploadStore] set, the server also takes uploads; the protocol
// work is done by package [github.com/ferryhq/ferry/server/resumable]:
//
//   - /files/ speaks tus 1.0.0 (core, creation, creation-with-upload,
//     creation-defer-length, termination, checksum, expiration,
//     concatenation including unfinished) and the IETF resumable-upload
//     draft (Upload-Draft-Interop-Version 3 to 8, and the latest draft
//     without that header) on the same uploads: an upload created with one
//     can be resumed with the other.
//   - POST /upload takes multipart/form-data, streaming each file part into
//     a finished upload, and answers 201 with JSON: each file's field,
//     sanitised name, size, sha256, id and url.
//   - GET /files/<id> downloads a finished upload, with Range and a strong
//     ETag, under its sanitised name; only media a browser never runs
//     (audio, video, images but SVG, plain text) is shown inline, anything
//     else is an application/octet-stream attachment, always with nosniff
//     and a sandbox policy. Stored streams (GET /stream/<name>) are served
//     the same way. This is the one place uploads are served from: they are stored under their
//     IDs (<id>.bin and <id>.info in the uploads directory), never under a
//     name the client chose, so a hostile file name cannot reach the file
//     system.
//
// Upload IDs are 128 random bits. [Config.Token] requires a bearer token on
// all of these except OPTIONS, compared in constant time; files below Root
// and /healthz stay public. [Config.MaxUploadSize] bounds every upload and
// live stream (413). Limits protect a server started with nothing but
// Uploads: uploads and streams together hold at most
// [Config.MaxUploadStorage] (by default, they leave 5% of their file
// system free, at most 4 GiB, measured as bytes arrive, or hold 10 GiB
// where the free space is unknown; 507 Insufficient Storage past it), and
// one client creates at most [Config.UploadCreationBurst] uploads and
// streams at once and then [Config.UploadCreationRate] a second (default
// 100, then 20; 429 with Retry-After past them). Unfinished uploads idle for [Config.UploadExpiry]
// are removed. One request at a time changes an upload; a request whose
// content has stalled for [Config.UploadStallTimeout] is taken over by the
// next one for the same upload, keeping every byte that was made durable.
// The offset a HEAD reports is always durable, and a new Server on the
// same directory — after a restart or a crash — continues every upload
// from there. Upload errors are problem details (RFC 9457,
// application/problem+json).
//
// # Limits
//
// A client cannot hold the server with what it sends slowly. [Serve] bounds
// a request's header in time ([Options.ReadHeaderTimeout], 30s) and size
// ([Options.MaxHeaderBytes], 64 KiB; 431 past it). The content of every
// request that has one, on any route, has an idle timeout that every
// arriving byte resets ([Config.BodyIdleTimeout], 60s; a live stream's
// producer may pause, so streams have [Config.StreamIdleTimeout], 5m): past
// it, the handler's read fails with [ErrBodyIdle] and the connection is
// closed (over HTTP/2, the stream is reset). Content nobody reads, which
// net/http drains after the handler, is bounded the same way. One client
// address (an IPv6 client: its /64) may have [Config.MaxUploadsPerClient]
// requests with content in flight, 32 by default; more get 429
// ([ErrClientBusy]) with Retry-After. Content that stalls past its idle
// timeout is answered 408 when the client still listens; a form cut short
// is 400, and an upload append cut short keeps what arrived and is
// answered 204 with the offset it reached, from which the client resumes. Every limit takes 0 for its default and a negative value for
// none.
//
// # Routes
//
// All routes are registered in one [http.ServeMux]:
//
//	GET, HEAD /healthz   200 "ok\n"
//	GET, HEAD /<path>    files below Config.Root
//
// and, with uploads on (a file below Root at files/... is then shadowed):
//
//	POST, OPTIONS /files/             create an upload; capabilities
//	HEAD /files/<id>                  offset retrieval (tus and draft)
//	PATCH /files/<id>                 append
//	DELETE /files/<id>                terminate
//	GET /files/<id>                   download a finished upload
//	POST /upload                      multipart/form-data
//
// Other methods get 405 with an Allow header. Each request is logged with
// [log/slog] once it is done: method, path, status, bytes, duration, remote
// address, protocol and the Range asked for.
package server
