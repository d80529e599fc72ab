package transfer

import (
	"context"
	"errors"
	"net/http"
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
// defers to the hook in the request's context, or stops after 10 redirects.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if f, ok := req.Context().Value(redirectKey{}).(RedirectFunc); ok {
		return f(req, via)
	}
	return DefaultRedirectPolicy(req, via)
}

// ErrTooManyRedirects stops a redirect chain longer than the policy allows.
var ErrTooManyRedirects = errors.New("ferry: stopped after 10 redirects")

// DefaultRedirectPolicy follows up to 10 redirects.
func DefaultRedirectPolicy(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
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
