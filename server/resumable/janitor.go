package resumable

import (
	"context"
	"time"

	"github.com/ferryhq/ferry/server/store"
)

// janitorWait is how long the janitor waits for an upload a request holds
// before it leaves the upload for its next pass.
const janitorWait = time.Second

// janitor cleans up expired uploads every so often until ctx is done.
func (h *Handler) janitor(ctx context.Context) {
	defer close(h.janitorDone)
	every := min(max(h.expiry/10, time.Second), 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := h.Clean(ctx); err != nil {
				h.log.Warn("cleaning expired uploads", "err", err)
			} else if n > 0 {
				h.log.Info("expired uploads removed", "count", n)
			}
		}
	}
}

// Clean makes one pass over the store: it completes final uploads whose
// partial uploads are all finished (a restart forgets who was waiting),
// then removes the uploads that expired: unfinished ones and partial ones
// whose last change is older than Config.Expiry. An upload a request holds
// is skipped. It needs a store.Lister and a store.Terminater, and returns
// how many uploads it removed.
func (h *Handler) Clean(ctx context.Context) (int, error) {
	if h.lister == nil || h.term == nil || h.expiry <= 0 {
		return 0, nil
	}
	ids, err := h.lister.List(ctx)
	if err != nil {
		return 0, err
	}
	var expired []string
	now := h.now()
	for _, id := range ids {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		up, err := h.store.GetUpload(ctx, id)
		if err != nil {
			continue
		}
		info, err := up.GetInfo(ctx)
		if err != nil {
			continue
		}
		if info.IsFinal && !info.Finished() && h.concat != nil {
			h.withLock(ctx, id, janitorWait, func(up store.Upload, info store.Info) {
				if info.IsFinal && !info.Finished() {
					h.tryConcat(ctx, up, info) // one that cannot complete expires
				}
			})
		}
		if h.expired(info, now) {
			expired = append(expired, id)
		}
	}
	removed := 0
	for _, id := range expired {
		h.withLock(ctx, id, janitorWait, func(up store.Upload, info store.Info) {
			if !h.expired(info, h.now()) {
				return // it moved on while we looked elsewhere
			}
			if err := h.terminate(ctx, up); err != nil {
				h.log.Warn("remove expired upload", "id", id, "err", err)
				return
			}
			h.forget(id)
			h.log.Info("upload expired", "id", id, "offset", info.Offset, "updated", info.UpdatedAt)
			removed++
		})
	}
	return removed, nil
}

func (h *Handler) expired(info store.Info, now time.Time) bool {
	return expires(info) && now.Sub(info.UpdatedAt) > h.expiry
}

// expires reports whether an upload is one that expires: an unfinished
// one, or a partial one, which is only ever a piece of another.
func expires(info store.Info) bool { return !info.Finished() || info.IsPartial }
