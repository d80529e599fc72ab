package transfer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

type redirectKey struct{}

// RedirectFunc decides whether to follow a redirect, like http.Client.CheckRedirect.
type RedirectFunc func(req *http.Request, via []*http.Request) error

// WithRedirectHook attaches a per-request redirect hook to ctx. A client whose
// CheckRedirect is [CheckRedirect] calls it, so one shared http.Client can
// report redirects to the task that made the request.
func WithRedirectHook(ctx context.Context, f RedirectFunc) context.Context {
	return context.WithValue(ctx, redirectKey{}, f)
}

// CheckRedirect is the http.Client.CheckRedirect of every ferry client: it
// refuses a target CheckTarget refuses, leaves the credentials behind when
// the chain leaves its origin, and then defers to the hook in the
// request's context, or stops after 10 redirects.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if err := CheckTarget(req.URL, via[len(via)-1].URL); err != nil {
		return &RedirectRefused{Err: err}
	}
	dropCredentials(req, via)
	if f, ok := req.Context().Value(redirectKey{}).(RedirectFunc); ok {
		return f(req, via)
	}
	if err := DefaultRedirectPolicy(req, via); err != nil {
		return &RedirectRefused{Err: err}
	}
	return nil
}

// ErrUnsafeURL reports a URL a server pointed to (a redirect, a Location,
// a playlist's entry) that ferry does not follow: not http or https,
// without a host, or with credentials in it.
var ErrUnsafeURL = errors.New("ferry: refusing a URL the server pointed to")

// CheckTarget refuses a URL a server pointed to that ferry does not follow
// (ErrUnsafeURL); u is resolved against base, the URL of the request the
// server answered. Other schemes (file:, ftp:) are not for a server to
// choose, and credentials in the URL are the server's own unless they are
// base's, inherited by a reference to base's origin: the server would
// choose what goes out as Basic authentication, and where.
func CheckTarget(u, base *url.URL) error {
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: %s is not an http or https URL", ErrUnsafeURL, short(u.Redacted()))
	case u.Hostname() == "" || !reparses(u):
		return fmt.Errorf("%w: %s names no host", ErrUnsafeURL, short(u.Redacted()))
	case u.User != nil && !inherited(u, base):
		return fmt.Errorf("%w: %s holds credentials", ErrUnsafeURL, short(u.Redacted()))
	}
	return nil
}

// inherited reports whether u's userinfo is base's, at base's origin.
func inherited(u, base *url.URL) bool {
	return base != nil && base.User != nil && u.User.String() == base.User.String() && SameOrigin(u, base)
}

// reparses reports whether u, written out, reads back: a reference
// resolved into "https://::" has a Host but is no URL a request can have.
func reparses(u *url.URL) bool {
	_, err := url.Parse(u.String())
	return err == nil
}

// short cuts a URL from a server to a length fit for an error message.
func short(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// ErrTooManyRedirects stops a redirect chain longer than the policy allows.
var ErrTooManyRedirects = errors.New("ferry: stopped after 10 redirects")

// DefaultRedirectPolicy follows up to 10 redirects: via holds the
// original request and each earlier hop.
func DefaultRedirectPolicy(req *http.Request, via []*http.Request) error {
	if len(via) > 10 {
		return ErrTooManyRedirects
	}
	return nil
}

// ReportRedirects is the redirect hook of a task's requests: it applies the
// user's policy (nil: DefaultRedirectPolicy) and reports each redirect it
// allows through emit. A refusal comes out of http.Client.Do wrapped in a
// *RedirectRefused, which RedirectRefusal finds.
func ReportRedirects(policy RedirectFunc, emit func(Event)) RedirectFunc {
	if policy == nil {
		policy = DefaultRedirectPolicy
	}
	return func(req *http.Request, via []*http.Request) error {
		if err := policy(req, via); err != nil {
			// Refused by policy: final, whatever the error says about
			// retrying.
			return &RedirectRefused{Err: err}
		}
		status := 0
		if req.Response != nil {
			status = req.Response.StatusCode
		}
		emit(RedirectEvent{StatusCode: status, From: via[len(via)-1].URL.String(), To: req.URL.String()})
		return nil
	}
}

// RedirectRefused carries the redirect policy's refusal out of http.Client.
type RedirectRefused struct{ Err error }

func (e *RedirectRefused) Error() string { return e.Err.Error() }
func (e *RedirectRefused) Unwrap() error { return e.Err }

// RedirectRefusal returns the policy's own error when err is a refused
// redirect.
func RedirectRefusal(err error) (error, bool) {
	if re, ok := errors.AsType[*RedirectRefused](err); ok {
		return re.Err, true
	}
	return nil, false
}
