// Package resumable serves resumable uploads over HTTP: tus 1.0.0
// (https://tus.io/protocols/resumable-upload) and the IETF draft
// "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload), on
// one [store.Store] and one URL space, so an upload begun in one dialect
// can be inspected in the other.
//
// [New] returns a [Handler]. Mounted at Config.BasePath ("/files/"), it
// answers POST to create uploads, HEAD for the offset, PATCH to append,
// DELETE to terminate, OPTIONS for capabilities and GET to download a
// finished upload. Its exported methods (PostFile, HeadFile, ...) serve
// the same requests for callers with their own router, like tusd's
// unrouted handler. PostForm takes multipart/form-data into the same store.
//
// # Dialects
//
// A request with Upload-Draft-Interop-Version is spoken to in the draft's
// dialect of that version; one with Tus-Resumable in tus; one with neither
// but with Upload-Complete (or a PATCH of application/partial-upload) in
// the latest draft, as clients of the final RFC will send no interop
// version. Everything else is tus, and a tus POST, PATCH or DELETE without
// Tus-Resumable: 1.0.0 gets 412 with Tus-Version.
//
// Supported interop versions and how they differ here:
//
//	3  draft -01      Upload-Incomplete (?1 = more to come) instead of Upload-Complete
//	4  draft -02      Upload-Complete
//	5  draft -03      + 104 interim responses with the durable Upload-Offset while
//	                  content is appended (one per Config.CheckpointBytes)
//	6  drafts -04/-05 + PATCH must be application/partial-upload (415 otherwise);
//	                  + Upload-Limit (max-size, expires) on 104, 201, HEAD, 413
//	7  drafts -06..-08 Upload-Limit's lifetime key is max-age instead of expires
//	8  drafts -09..-12 (latest) as 7; OPTIONS carries Accept-Patch
//
// In every version creation answers 104 (Upload Resumption Supported)
// with Location before the content is read, HEAD answers 204, appends 204
// with Upload-Offset and the completeness field, a wrong Upload-Offset 409
// with the current offset and a mismatching-upload-offset problem (with
// expected-offset and provided-offset), and errors carry problem details
// (RFC 9457). tus-js-client's ietf-draft-03 protocol sends interop 5 and
// its ietf-draft-05 protocol interop 6.
//
// # Lengths
//
// tus declares the length with Upload-Length or defers it with
// Upload-Defer-Length: 1 and a later Upload-Length on a PATCH. The draft
// takes Upload-Length on any request, and Upload-Complete: ?1 with a
// Content-Length declares offset plus that; two declarations that
// disagree get 400 inconsistent-upload-length. An upload is finished once
// its offset reaches its known length; a draft request that says
// Upload-Complete: ?1 declares the length where it ends.
//
// # One request at a time
//
// Every HEAD, PATCH, DELETE and content-carrying POST holds the upload's
// lock (store.Locker, or an in-process one). A newcomer takes over a
// holder whose content has not moved for Config.StallTimeout: the holder
// is cancelled, keeps what it made durable and lets go. A holder that is
// making progress is not disturbed: the newcomer waits up to
// Config.LockTimeout and then gets 423 Locked. DELETE takes over at once.
//
// # Integrity
//
// tus Upload-Checksum (sha1, sha256, sha512, md5) and RFC 9530
// Content-Digest (sha-256, sha-512) check one request's content, which is
// then appended all or nothing: a mismatch answers 460 (tus) or 400 (draft)
// and the offset does not move. A Repr-Digest sent at creation is checked
// over the whole upload when it completes; a mismatch fails and removes it.
//
// # Limits
//
// Config.MaxSize bounds one upload (and the files of one form request
// together); without it, lengths are still held to the largest
// structured-field Integer. Upload-Metadata is at most [MaxMetadataBytes].
// Config.MaxStorage bounds what the store holds in all (507 Insufficient
// Storage past it), counted from the store at start and kept current.
// Config.CreationRate and CreationBurst bound how fast one client may
// create uploads (429 with Retry-After past them).
//
// # Expiration
//
// Unfinished uploads untouched for Config.Expiry are removed by a janitor,
// as are partial uploads of concatenations. tus responses carry
// Upload-Expires; draft ones Upload-Limit's expires or max-age.
//
// # Concatenation
//
// tus partial uploads (Upload-Concat: partial) are concatenated into a
// final upload (Upload-Concat: final;<url> <url>...). The final upload may
// be created before its partials are finished: it completes when the last
// one does, and until then HEAD shows no Upload-Offset. Draft requests may
// use Upload-Concat too.
//
// A final upload may name only partial uploads its client could append to
// itself: uploads of this handler (a path below BasePath, or an absolute
// URL of the host the request was sent to) that exist, are partial and
// have not expired. Upload URLs are capabilities (128 random bits), so
// naming one proves the client was given it, which is all an append asks
// for; a server that tells its users apart must also check that the
// partials are the caller's, or a final upload could keep a copy of bytes
// their owner deleted. Each partial upload is named once, at most
// Config.MaxPartials of them, and their lengths are held to Config.MaxSize
// whenever they become known: at creation, and on every HEAD or GET of the
// final upload and before its concatenation. A final upload that can never
// be completed answers 413 (too large) or 410 (a partial upload is gone).
//
// # Downloads
//
// GET of an upload streams it once finished, with Range support, a strong
// ETag and the sanitised file name (from Upload-Metadata's filename,
// Content-Disposition, or the form) in Content-Disposition. The bytes are
// the client's, so they never run as a page of the origin: audio, video,
// images but SVG and plain text are shown inline under their type; any
// other type is an application/octet-stream attachment; every download
// carries X-Content-Type-Options: nosniff and Content-Security-Policy:
// sandbox.
// File names are never used as paths: [SanitizeFileName] reduces them to
// one harmless path element for display.
package resumable
