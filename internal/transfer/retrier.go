package transfer

import (
	"errors"
	"net/url"
	"time"

	"github.com/ferryhq/ferry/internal/retry"
)

// NewRetrier applies policy and reports each retry as a RetryEvent.
func NewRetrier(policy retry.Policy, emit func(Event)) retry.Retrier {
	return retry.Retrier{Policy: policy, OnRetry: func(attempt int, d time.Duration, err error) {
		emit(RetryEvent{Attempt: attempt, Delay: d, Err: err, Host: failedHost(err), Unreachable: retry.Unreachable(err)})
	}}
}

// failedHost is the host of the request err reports, if it names one.
func failedHost(err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return u.Host
		}
	}
	return ""
}
