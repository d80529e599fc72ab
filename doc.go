// Package ferry moves big files over unreliable networks without losing a
// byte. It gives Go programs what iOS apps get from URLSession: sessions
// that own tasks, tasks that can be suspended, resumed, cancelled with resume
// data and observed, and metrics for every HTTP exchange.
//
// # Sessions and tasks
//
// A [Session] holds a [Config], a connection pool and a bandwidth budget.
// [Session.Download] starts a [Task] and returns at once; [Task.Wait] blocks
// until it completes, and [Task.Events] streams what happens on the way:
//
//	s, _ := ferry.NewSession(ferry.Config{})
//	task, _ := s.Download(ctx, ferry.DownloadRequest{URL: u, Path: "big.iso"})
//	for ev := range task.Events() {
//		if p, ok := ev.(ferry.ProgressEvent); ok {
//			fmt.Printf("%d / %d bytes\n", p.Done, p.Expected)
//		}
//	}
//	res, err := task.Wait(ctx)
//
// A task is suspended when created with [Session.NewDownload] and running
// after [Task.Resume]; [Task.Suspend] pauses it, [Task.Cancel] stops it and
// deletes what it fetched, and [Task.CancelWithResumeData] stops it and
// returns a [ResumeData] that continues it later, in this process or another.
//
// # Data tasks
//
// [Session.Data] sends one request of any method, with a body of bytes, a
// reader or a file, and gives back the response, its body in memory up to
// a bound or streamed to a writer, as URLSession's data task does: a 404 is
// a response, not an error. It goes through the same session as every
// other task (header, credentials to the URL's origin only, host slots,
// idle timeout, bandwidth budget, metrics), and it is retried only when it
// may be sent again. For the simple cases, [Fetch], [Do] and [Get] use the
// process's [Shared] session:
//
//	res, err := ferry.Fetch(ctx, "https://example.com/api/status")
//	fmt.Println(res.StatusCode, string(res.Response))
//
// # Never a wrong byte
//
// A download writes to PATH.part and, unless the session is ephemeral, keeps
// its state in the control file PATH.ferry, so a killed program that runs the
// same download again continues where it stopped. Every resume is checked:
// the request carries Range and If-Range with the strong ETag (or, when the
// server sends no entity tag, a strong Last-Modified date); only a 206 whose
// Content-Range starts exactly at the bytes held and whose validator matches
// is appended; a 200, or a representation that changed, restarts from zero.
// Without a validator that can prove two ranges belong together, ferry
// starts over rather than splice. When the last byte is in, the file is verified
// (size, and the digest if one was given), fsynced and renamed to PATH in one
// step: nothing half-written ever sits under the final name.
//
// # Timeouts and retries
//
// Like URLSession, ferry separates the idle timeout (no byte moved for a
// while: the attempt is stuck) from the resource timeout (the whole task took
// too long). A slow transfer that keeps moving is never cut. Failed attempts
// are retried with exponential backoff and jitter, honouring Retry-After; an
// attempt that took the download further than ever before resets the count,
// so a flaky link that still makes headway is not given up on, while a
// server that makes every attempt start over soon is.
//
// # Errors
//
// Failures are typed: [*Error] says what was being done and to which URL,
// [*StatusError] carries an HTTP status, [*IntegrityError] a size or digest
// mismatch, and sentinels such as [ErrIdleTimeout] and [ErrCanceled] match
// with errors.Is.
package ferry
