package ferry

import "github.com/ferryhq/ferry/internal/transfer"

// Progress is a snapshot of a task's advance: bytes done, bytes expected
// (-1 while unknown) and the recent speed.
type Progress = transfer.Progress

// Event is something that happened to a task; receive them from
// Task.Events and switch on the concrete type.
type Event = transfer.Event

// The event types.
type (
	ProgressEvent = transfer.ProgressEvent
	ResponseEvent = transfer.ResponseEvent
	RedirectEvent = transfer.RedirectEvent
	MetricsEvent  = transfer.MetricsEvent
	RetryEvent    = transfer.RetryEvent
	RestartEvent  = transfer.RestartEvent
	DoneEvent     = transfer.DoneEvent
	ReplyEvent    = transfer.ReplyEvent
	SegmentEvent  = transfer.SegmentEvent
)

// TransactionMetrics are the timings and sizes of one HTTP exchange,
// recorded with net/http/httptrace.
type TransactionMetrics = transfer.TransactionMetrics

// TaskMetrics sum up a task: interval, redirects, retries and transactions.
type TaskMetrics = transfer.TaskMetrics
