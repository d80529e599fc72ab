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
