package transfer

import (
	"time"

	"github.com/ferryhq/ferry/internal/retry"
)

// NewRetrier applies policy and reports each retry as a RetryEvent.
func NewRetrier(policy retry.Policy, emit func(Event)) retry.Retrier {
	return retry.Retrier{Policy: policy, OnRetry: func(attempt int, d time.Duration, err error) {
		emit(RetryEvent{Attempt: attempt, Delay: d, Err: err})
	}}
}
