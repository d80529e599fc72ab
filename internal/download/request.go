package download

import (
	"context"

	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/watchdog"
)

// attempt runs one request under the job's limits (see send.Env.Attempt).
func (r *run) attempt(ctx context.Context, f func(actx context.Context, wd *watchdog.Watchdog) error) error {
	return r.j.Attempt(ctx, r.j.URL, f)
}

// newRequest builds a request for the job's URL. Bytes are stored as
// served, so no content coding is asked for (send.Env.NewRanged).
func (r *run) newRequest(ctx context.Context, method string, wd *watchdog.Watchdog) (*send.Exchange, error) {
	return r.j.NewRanged(ctx, wd, method, r.j.URL)
}
