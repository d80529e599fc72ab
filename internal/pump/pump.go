// Package pump moves a response body to where it is stored: in pieces
// large enough to be cheap, under the bandwidth budget and the idle
// watchdog, and with the reader woken per batch of packets rather than per
// packet.
package pump

import (
	"context"
	"io"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// Limiter is a shared bandwidth budget (golang.org/x/time/rate.Limiter fits).
type Limiter interface {
	WaitN(ctx context.Context, n int) error
	Burst() int
}

// What arrives is handed on once batchBytes have gathered, or batchDelay
// after the last hand-over: on a fast link each read returns a packet or
// two, and a write, a map update and a progress tick for each would cost
// more CPU than the transfer.
const (
	batchBytes = 64 << 10
	batchDelay = 10 * time.Millisecond
)

// Options are what a body is read under.
type Options struct {
	Watchdog *watchdog.Watchdog // required: fed every byte; held while waiting for the budget
	Limiter  Limiter            // reads at most its burst at a time
	Wakeup   *Wakeup
}

// Body reads body into buf and hands what arrived to sink, and returns the
// bytes sink took. A read error is transfer.Transient (the connection broke
// mid-body: a GET may be repeated); sink's and the limiter's errors are
// returned as they are. Waiting for the budget is not a stall.
func Body(ctx context.Context, body io.Reader, buf []byte, sink func([]byte) error, o Options) (int64, error) {
	defer o.Wakeup.done()
	if o.Limiter != nil {
		buf = buf[:min(len(buf), o.Limiter.Burst())]
	}
	var total int64
	fill, last := 0, time.Now()
	flush := func() error {
		if fill == 0 {
			return nil
		}
		err := sink(buf[:fill])
		if err == nil {
			total += int64(fill)
		}
		fill, last = 0, time.Now()
		return err
	}
	for {
		n, rerr := body.Read(buf[fill:])
		if n > 0 {
			o.Watchdog.Add(n)
			o.Wakeup.read(n)
			if o.Limiter != nil {
				o.Watchdog.Hold()
				err := o.Limiter.WaitN(ctx, n)
				o.Watchdog.Release()
				if err != nil {
					// These n bytes are not paid for; what came
					// before them is, and is kept.
					if ferr := flush(); ferr != nil {
						return total, ferr
					}
					return total, err
				}
			}
			fill += n
		}
		if rerr != nil || fill >= min(batchBytes, len(buf)) || time.Since(last) >= batchDelay {
			if err := flush(); err != nil {
				return total, err
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, &transfer.Transient{Err: rerr}
		}
	}
}
