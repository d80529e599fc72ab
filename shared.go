package ferry

import (
	"context"
	"sync"
)

var shared = sync.OnceValues(func() (*Session, error) { return NewSession(DefaultConfig()) })

// Shared returns the process's shared session, made with DefaultConfig on
// first use, as URLSession.shared is: for the simple cases, through the
// one-call helpers Get, Fetch and Do. Closing it ends it for the whole
// process.
func Shared() (*Session, error) { return shared() }

// Get downloads url to path with the shared session and waits for the
// result, as a DownloadRequest with only those two fields does.
func Get(ctx context.Context, url, path string) (*Result, error) {
	return run(ctx, func(s *Session) (*Task, error) {
		return s.Download(ctx, DownloadRequest{URL: url, Path: path})
	})
}

// Fetch gets url with the shared session as a data task and waits for the
// result: its status, header and body (Result.StatusCode, Header and
// Response).
func Fetch(ctx context.Context, url string) (*Result, error) {
	return Do(ctx, DataRequest{URL: url})
}

// Do runs req as a data task with the shared session and waits for the
// result.
func Do(ctx context.Context, req DataRequest) (*Result, error) {
	return run(ctx, func(s *Session) (*Task, error) { return s.Data(ctx, req) })
}

// run starts a task on the shared session and waits for it.
func run(ctx context.Context, start func(*Session) (*Task, error)) (*Result, error) {
	s, err := Shared()
	if err != nil {
		return nil, err
	}
	t, err := start(s)
	if err != nil {
		return nil, err
	}
	return t.Wait(ctx)
}
