package transfer

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferryhq/ferry/internal/retry"
)

// Error is a failed transfer step: the operation, the URL and the cause, in
// the shape of net/url.Error.
type Error struct {
	Op  string // "probe", "download", "commit", ...
	URL string
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("ferry: %s %s: %s", e.Op, Redacted(e.URL), strings.TrimPrefix(e.Err.Error(), "ferry: "))
}

// Redacted is rawURL with the password of its userinfo hidden, as
// net/http's own errors show URLs: error texts end up in logs.
func Redacted(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Redacted()
	}
	return rawURL
}
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the cause was a timeout.
func (e *Error) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// StatusError is an HTTP response whose status ends or interrupts a transfer.
type StatusError struct {
	StatusCode int
	Status     string
	// RetryAfter is what the server's Retry-After asked for, if anything.
	RetryAfter time.Duration
	// retryAfterSent: the response had a Retry-After, even one asking for
	// no wait (see Unprocessed).
	retryAfterSent bool
	// redirected: the response came at the end of a redirect (see
	// Unprocessed).
	redirected bool
}

// ResponseError is the StatusError of resp, with the wait its Retry-After
// asks for.
func ResponseError(resp *http.Response) *StatusError {
	ra := resp.Header.Get("Retry-After")
	return &StatusError{
		StatusCode:     resp.StatusCode,
		Status:         resp.Status,
		RetryAfter:     retry.ParseRetryAfter(ra, time.Now()),
		retryAfterSent: strings.TrimSpace(ra) != "",
		redirected:     resp.Request != nil && resp.Request.Response != nil,
	}
}

func (e *StatusError) Error() string {
	if e.Status != "" {
		return "ferry: unexpected status " + e.Status
	}
	return fmt.Sprintf("ferry: unexpected status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// RetryAfterDelay is what the server's Retry-After asked for.
func (e *StatusError) RetryAfterDelay() time.Duration { return e.RetryAfter }

// Retryable reports whether the status is one that may pass (RFC 9110
// §15.5.9, §15.6.3-5, RFC 6585 §4).
func (e *StatusError) Retryable() bool {
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Unprocessed reports whether the status says the server did not act on
// the request (RFC 9110 §15.5.9, RFC 8470 §5.2, RFC 6585 §4), so that even
// a request that is not idempotent may be sent again.
//
// A 503 counts only with a Retry-After (RFC 9110 §15.6.4, §10.2.3): that is
// the server shedding load and saying when to come back. A bare 503 may
// come from a gateway whose origin dropped the connection after it acted
// (some proxies answer an upstream reset so), and repeating the request
// could do it twice.
//
// At the end of a redirect it says nothing of the request: a server acted
// on it when it answered with the redirect.
func (e *StatusError) Unprocessed() bool {
	if e.redirected {
		return false
	}
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	case http.StatusServiceUnavailable:
		return e.retryAfterSent
	}
	return false
}

// IntegrityError reports a result that does not match what was expected of
// it: a size or a digest. Nothing is placed under the final name.
type IntegrityError struct {
	What string // "size", "sha-256", "sha-512"
	Want string
	Got  string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("ferry: integrity check failed: %s is %s, want %s", e.What, e.Got, e.Want)
}

// kindError is a sentinel with the two properties callers ask errors about.
type kindError struct {
	msg       string
	timeout   bool
	retryable bool
}

func (e *kindError) Error() string   { return e.msg }
func (e *kindError) Timeout() bool   { return e.timeout }
func (e *kindError) Retryable() bool { return e.retryable }

// Sentinels, matched with errors.Is.
var (
	// ErrIdleTimeout: no byte moved for the idle timeout.
	ErrIdleTimeout error = &kindError{"ferry: idle timeout: no data moved", true, true}
	// ErrTooSlow: the transfer ran below the minimum speed for the whole window.
	ErrTooSlow error = &kindError{"ferry: transfer slower than the minimum speed", true, true}
	// ErrResourceTimeout: the whole transfer took longer than allowed.
	ErrResourceTimeout error = &kindError{"ferry: resource timeout", true, false}
	// ErrCanceled: the task was cancelled.
	ErrCanceled error = &kindError{"ferry: task canceled", false, false}
	// ErrBadContentRange: a 206 whose Content-Range does not match the request.
	ErrBadContentRange error = &kindError{"ferry: response range does not match the request", false, true}
	// ErrRangeNotSatisfiable: the server answered 416 to a range that should exist.
	ErrRangeNotSatisfiable error = &kindError{"ferry: range not satisfiable", false, false}
	// ErrShortBody: the body ended before its declared length.
	ErrShortBody error = &kindError{"ferry: response body shorter than declared", false, true}
)

// Unprocessed reports whether err says the request never took effect: the
// host was not reached at all, or it answered with a status that says it
// did not act. A request that is not idempotent may be repeated then.
func Unprocessed(err error) bool {
	if _, ok := errors.AsType[*afterRedirect](err); ok {
		return false
	}
	if retry.Unreachable(err) {
		return true
	}
	se, ok := errors.AsType[*StatusError](err)
	return ok && se.Unprocessed()
}

// AfterRedirect marks err, a failure that came after a server had answered
// the request with a redirect: that server acted on it, so Unprocessed is
// false whatever err says.
func AfterRedirect(err error) error { return &afterRedirect{err} }

type afterRedirect struct{ err error }

func (e *afterRedirect) Error() string { return e.err.Error() }
func (e *afterRedirect) Unwrap() error { return e.err }

// Final marks a failure that must not be repeated, whatever its cause
// says: a request that is not idempotent, for instance.
type Final struct{ Err error }

func (e *Final) Error() string   { return e.Err.Error() }
func (e *Final) Unwrap() error   { return e.Err }
func (e *Final) Retryable() bool { return false }

// Transient marks a network failure of an idempotent request as worth another try.
type Transient struct{ Err error }

func (e *Transient) Error() string   { return e.Err.Error() }
func (e *Transient) Unwrap() error   { return e.Err }
func (e *Transient) Retryable() bool { return true }
