// Package ferrytest provides HTTP test servers that serve one large resource
// and misbehave on request, for testing clients that must survive unreliable
// networks and imperfect servers.
//
// [NewServer] starts a server on loopback and shuts it down when the test
// ends. Every path serves the same resource; URL+"/file" is the usual one.
// The content is pseudo-random, derived from a seed and a version, and
// generated as it is sent, so a server of many gigabytes starts at once and
// uses no memory. [Server.Content] and [Server.SHA256] give the expected
// bytes and digest to check a download against.
//
// A well-behaved server answers GET and HEAD per RFC 9110: single byte
// ranges ("bytes=a-b", "bytes=a-", "bytes=-n") get 206 with Content-Range,
// an unsatisfiable range gets 416 with "Content-Range: bytes */size", and
// If-Range with the current strong ETag or exact Last-Modified date keeps
// the range while anything else gets 200 and the full body. A request with
// several ranges gets 200 and the full body, which RFC 9110 allows.
//
// # Faults
//
// Options make the server misbehave in one precise way each, and combine
// freely:
//
//	srv := ferrytest.NewServer(t,
//		ferrytest.Size(64<<20),
//		ferrytest.RetryAfter(503, "1", 1), // the first request gets 503 and Retry-After: 1
//		ferrytest.DropAfter(1<<20, 2),     // the next two bodies are cut after 1 MiB
//		ferrytest.ChangeETagAfter(3),      // the fourth GET gets a new version
//	)
//	err := download(srv.Client(), srv.URL+"/file", dst)
//
// Faults that take a count apply to the first requests they concern and then
// stop, so a client that retries correctly always finishes; [Server.Requests]
// shows what it asked for and what it got. [Option] lists the order in which
// faults meet a request. For a fault the options do not cover, [Handler]
// wraps the server's handler.
//
// # Protocols
//
// Servers speak HTTP/1.1 by default, HTTP/2 over cleartext with [HTTP2], and
// HTTPS with HTTP/2 with [TLS]. [Server.Client] returns a client set up for
// the server. Running the same test against each protocol catches faults
// that look different on the wire: over HTTP/1.1 a cut body is an unexpected
// EOF, over HTTP/2 a stream reset.
//
// # Special paths
//
// /healthz answers 200 "ok". With [Redirect], /redirect/k answers a chain of
// k redirects ending at /file.
package ferrytest
