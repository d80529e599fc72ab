// Package retry holds the retry policy of every ferry transfer: how many
// attempts, how long to wait between them, and what a server's Retry-After
// asks for. Errors say themselves whether they are worth retrying (see
// Retryable), except failures no retry can cure, which this package
// recognizes (see Permanent).
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Policy is an exponential backoff with full jitter. The zero value is usable.
type Policy struct {
	// MaxAttempts bounds consecutive failed attempts that made no progress.
	// An attempt that moved bytes resets the count, so a flaky but working
	// link is never given up on. 0 means 10; negative means no retries.
	MaxAttempts int
	// Initial is the first backoff (0 means 500ms); it doubles per failure.
	Initial time.Duration
	// Max caps a single backoff (0 means 30s). A server's Retry-After may ask
	// for longer, up to MaxRetryAfter.
	Max time.Duration
	// MaxRetryAfter caps how long a Retry-After is honoured (0 means 10m).
	// A server asking for longer fails the transfer instead of stalling it.
	MaxRetryAfter time.Duration
}

func (p Policy) attempts() int {
	switch {
	case p.MaxAttempts < 0:
		return 1
	case p.MaxAttempts == 0:
		return 10
	}
	return p.MaxAttempts
}

// Exhausted reports whether failures consecutive failures used up the policy.
func (p Policy) Exhausted(failures int) bool { return failures >= p.attempts() }

// Backoff returns the wait before retry number failures (1-based): a random
// duration in [d/2, d] where d = Initial * 2^(failures-1), capped at Max.
// Half-jitter keeps a floor so a burst of clients does not hammer at once.
func (p Policy) Backoff(failures int) time.Duration {
	initial, maxd := p.Initial, p.Max
	if initial <= 0 {
		initial = 500 * time.Millisecond
	}
	if maxd <= 0 {
		maxd = 30 * time.Second
	}
	d := initial
	for i := 1; i < failures && d < maxd; i++ {
		d *= 2
	}
	d = min(d, maxd)
	return d/2 + rand.N(d/2+1)
}

// Delay picks the wait before the next attempt: the server's Retry-After when
// it gave one (capped by MaxRetryAfter, ok=false when it asks for more), else
// the jittered backoff.
func (p Policy) Delay(failures int, retryAfter time.Duration) (d time.Duration, ok bool) {
	if retryAfter > 0 {
		limit := p.MaxRetryAfter
		if limit <= 0 {
			limit = 10 * time.Minute
		}
		return retryAfter, retryAfter <= limit
	}
	return p.Backoff(failures), true
}

// ParseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): either
// delay-seconds or an HTTP-date. It returns 0 when the header is absent or
// malformed.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// Retryable is implemented by errors that know whether repeating the
// operation can help.
type Retryable interface{ Retryable() bool }

// IsRetryable reports whether err says it may be retried. Errors that do not
// implement Retryable are not retried, except transport failures, which are
// wrapped by callers into a retryable type where they know the request was
// idempotent. A Permanent failure is never retried, however it is marked:
// this is the one place every engine asks.
func IsRetryable(err error) bool {
	if Permanent(err) {
		return false
	}
	var r Retryable
	return errors.As(err, &r) && r.Retryable()
}

// Sleep waits d or until ctx is done, returning the context's cause then.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// RetryAfterer is implemented by errors that carry the server's Retry-After.
type RetryAfterer interface{ RetryAfterDelay() time.Duration }

// Retrier runs the retry policy over a sequence of attempts: it counts
// consecutive failures that made no progress, lets through only retryable
// errors, and waits before the next attempt. The zero value with a Policy
// is ready to use; it is not safe for concurrent use (give each worker its
// own).
type Retrier struct {
	Policy Policy
	// OnRetry, if set, is told about each retry before the wait.
	OnRetry  func(attempt int, delay time.Duration, err error)
	failures int
}

// Failed decides what to do after an attempt failed with err: it returns
// nil once it has waited and the attempt may be repeated, or the error to
// give up with (the context's cause when ctx ended). progressed says the
// attempt moved the transfer forward, which resets the failure count.
func (r *Retrier) Failed(ctx context.Context, err error, progressed bool) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if progressed {
		r.failures = 0
	}
	if !IsRetryable(err) {
		return err
	}
	r.failures++
	if r.Policy.Exhausted(r.failures) {
		return err
	}
	var after time.Duration
	var ra RetryAfterer
	if errors.As(err, &ra) {
		after = ra.RetryAfterDelay()
	}
	d, ok := r.Policy.Delay(r.failures, after)
	if !ok {
		return fmt.Errorf("server asked to retry after %v: %w", after, err)
	}
	if r.OnRetry != nil {
		r.OnRetry(r.failures, d, err)
	}
	return Sleep(ctx, d)
}

// Succeeded resets the failure count.
func (r *Retrier) Succeeded() { r.failures = 0 }

// Do runs f until it succeeds or the Retrier gives up.
func (r *Retrier) Do(ctx context.Context, f func(context.Context) (progressed bool, err error)) error {
	for {
		progressed, err := f(ctx)
		if err == nil {
			return nil
		}
		if err := r.Failed(ctx, err, progressed); err != nil {
			return err
		}
	}
}
