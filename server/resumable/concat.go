package resumable

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/ferryhq/ferry/server/store"
)

// concatSpec is a parsed Upload-Concat (tus concatenation extension).
type concatSpec struct {
	partial, final bool
	ids            []string // of the partial uploads, for a final one
}

// parseConcat parses "partial" or "final;<url> <url>...". URLs may be
// absolute or paths; each must name an upload below BasePath.
func (h *Handler) parseConcat(v string) (concatSpec, *Error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return concatSpec{}, nil
	case v == "partial":
		if h.concat == nil {
			return concatSpec{}, ErrNotImplemented.with("concatenation")
		}
		return concatSpec{partial: true}, nil
	}
	rest, ok := strings.CutPrefix(v, "final;")
	if !ok {
		return concatSpec{}, ErrInvalidConcat.with("%q: want \"partial\" or \"final;<urls>\"", v)
	}
	spec := concatSpec{final: true}
	for _, u := range strings.Fields(rest) {
		id := h.idFromURL(u)
		if !store.ValidID(id) {
			return concatSpec{}, ErrInvalidConcat.with("%q is not an upload URL of this server", u)
		}
		spec.ids = append(spec.ids, id)
	}
	if len(spec.ids) == 0 {
		return concatSpec{}, ErrInvalidConcat.with("no partial uploads in %q", v)
	}
	return spec, nil
}

func (h *Handler) idFromURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	id, ok := strings.CutPrefix(u.Path, h.basePath)
	if !ok || strings.Contains(id, "/") {
		return ""
	}
	return id
}

// finalInfo checks the partial uploads of a final one and sets its size:
// their sum when every length is known, deferred otherwise.
func (h *Handler) finalInfo(ctx context.Context, ids []string, info *store.Info) *Error {
	var size int64
	known := true
	for _, id := range ids {
		up, err := h.store.GetUpload(ctx, id)
		if err != nil {
			return ErrInvalidConcat.with("partial upload %s: not found", id)
		}
		pi, err := up.GetInfo(ctx)
		if err != nil {
			return ErrInvalidConcat.with("partial upload %s: %v", id, err)
		}
		if !pi.IsPartial {
			return ErrInvalidConcat.with("upload %s is not a partial upload", id)
		}
		if pi.SizeIsDeferred {
			known = false
		}
		size += pi.Size
	}
	info.IsFinal, info.PartialUploads = true, ids
	info.SizeIsDeferred = !known
	if known {
		if h.maxSize > 0 && size > h.maxSize {
			return ErrMaxSizeExceeded.with("the partial uploads add up to %d bytes; the limit is %d", size, h.maxSize)
		}
		info.Size = size
	}
	return nil
}

// completeFinal concatenates a new final upload now if its partials are
// all finished, and otherwise remembers to when the last one finishes
// (tus concatenation-unfinished). No one else knows the new upload yet, so
// no lock is needed.
func (h *Handler) completeFinal(ctx context.Context, up store.Upload, info store.Info) store.Info {
	h.pendingMu.Lock()
	for _, p := range info.PartialUploads {
		if h.pending[p] == nil {
			h.pending[p] = map[string]bool{}
		}
		h.pending[p][info.ID] = true
	}
	h.pendingMu.Unlock()
	return h.tryConcat(ctx, up, info)
}

// tryConcat concatenates final upload up when all its partials are
// finished and returns its state. The caller holds up's lock, or up is
// not yet known to anyone. Failures are logged: the final upload simply
// stays incomplete, and HEAD, GET and the janitor try again.
func (h *Handler) tryConcat(ctx context.Context, up store.Upload, info store.Info) store.Info {
	ctx = context.WithoutCancel(ctx)
	partials := make([]store.Upload, len(info.PartialUploads))
	for i, id := range info.PartialUploads {
		p, err := h.store.GetUpload(ctx, id)
		if err != nil {
			h.log.Warn("final upload waits for a missing partial upload", "id", info.ID, "partial", id, "err", err)
			return info
		}
		pi, err := p.GetInfo(ctx)
		if err != nil || !pi.Finished() {
			return info
		}
		partials[i] = p
	}
	start := time.Now()
	if err := h.concat.Concat(ctx, up, partials); err != nil {
		h.log.Error("concatenate uploads", "id", info.ID, "err", err)
		return info
	}
	now, err := up.GetInfo(ctx)
	if err != nil {
		h.log.Error("concatenate uploads", "id", info.ID, "err", err)
		return info
	}
	h.forget(info.ID)
	h.log.Info("upload finished", "id", info.ID, "size", now.Size, "partials", len(partials), "concat_time", time.Since(start).Round(time.Millisecond))
	return now
}

// completeWaiting concatenates the final uploads that were waiting for the
// partial upload that just finished.
func (h *Handler) completeWaiting(ctx context.Context, partial string) {
	h.pendingMu.Lock()
	var finals []string
	for f := range h.pending[partial] {
		finals = append(finals, f)
	}
	h.pendingMu.Unlock()
	for _, f := range finals {
		h.withLock(ctx, f, 0, func(up store.Upload, info store.Info) {
			if info.IsFinal && !info.Finished() {
				h.tryConcat(ctx, up, info)
			}
		})
	}
}

// forget drops an upload from the waiting lists: a final upload that is
// complete or gone.
func (h *Handler) forget(final string) {
	h.pendingMu.Lock()
	defer h.pendingMu.Unlock()
	for p, finals := range h.pending {
		delete(finals, final)
		if len(finals) == 0 {
			delete(h.pending, p)
		}
	}
}

// withLock runs f on upload id under its lock, outside any request: it
// waits at most wait (LockTimeout when 0) and never takes over a request.
// It reports whether f ran.
func (h *Handler) withLock(ctx context.Context, id string, wait time.Duration, f func(store.Upload, store.Info)) bool {
	lock, err := h.locker.NewLock(id)
	if err != nil {
		return false
	}
	if wait <= 0 {
		wait = h.lockTimeout
	}
	lctx, cancel := context.WithTimeout(ctx, wait)
	err = lock.Lock(lctx, func() {})
	cancel()
	if err != nil {
		return false
	}
	defer lock.Unlock()
	up, err := h.store.GetUpload(ctx, id)
	if err != nil {
		return false
	}
	info, err := up.GetInfo(ctx)
	if err != nil {
		return false
	}
	f(up, info)
	return true
}
