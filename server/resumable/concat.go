package resumable

import (
	"context"
	"errors"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferryhq/ferry/server/store"
)

// concatSpec is a parsed Upload-Concat (tus concatenation extension).
type concatSpec struct {
	partial, final bool
	ids            []string // of the partial uploads, for a final one
}

// parseConcat parses r's Upload-Concat: "partial" or "final;<url>
// <url>...". Each URL must name an upload of this handler (see
// partialID), once: a final upload made of one partial upload many times
// would multiply its bytes past every limit. At most MaxPartials are named.
func (h *Handler) parseConcat(r *http.Request) (concatSpec, *Error) {
	vs := r.Header.Values("Upload-Concat")
	if len(vs) > 1 {
		return concatSpec{}, ErrInvalidConcat.with("%d Upload-Concat fields", len(vs))
	}
	v := strings.TrimSpace(r.Header.Get("Upload-Concat"))
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
	seen := map[string]bool{}
	for u := range strings.FieldsSeq(rest) {
		if len(spec.ids) == h.maxPartials {
			return concatSpec{}, ErrInvalidConcat.with("more than %d partial uploads", h.maxPartials)
		}
		id, ok := h.partialID(r, u)
		if !ok {
			return concatSpec{}, ErrInvalidConcat.with("%q is not an upload URL of this server", u)
		}
		if seen[id] {
			return concatSpec{}, ErrInvalidConcat.with("partial upload %s is named twice", id)
		}
		seen[id] = true
		spec.ids = append(spec.ids, id)
	}
	if len(spec.ids) == 0 {
		return concatSpec{}, ErrInvalidConcat.with("no partial uploads in %q", v)
	}
	return spec, nil
}

// partialID returns the upload ID in s, a URL a final upload names: a
// path below BasePath, or an absolute URL of the host r was sent to. Any
// other URL names an upload this handler cannot vouch for.
func (h *Handler) partialID(r *http.Request, s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	if u.Scheme != "" || u.Host != "" {
		if u.Scheme != "http" && u.Scheme != "https" || !sameHost(u.Host, u.Scheme, r.Host) {
			return "", false
		}
	}
	id, ok := strings.CutPrefix(u.Path, h.basePath)
	return id, ok && store.ValidID(id)
}

// sameHost reports whether host (of a URL with scheme) is requestHost,
// the Host the request was sent to: equal but for case and a default port.
func sameHost(host, scheme, requestHost string) bool {
	strip := func(hp, port string) string {
		hp = strings.ToLower(hp)
		if h, p, err := net.SplitHostPort(hp); err == nil {
			if p == port {
				return h
			}
			return net.JoinHostPort(h, p)
		}
		return strings.Trim(hp, "[]")
	}
	def := "80"
	if scheme == "https" {
		def = "443"
	}
	got := strip(host, def)
	return got != "" && (got == strip(requestHost, "80") || got == strip(requestHost, "443"))
}

// partials is what a final upload is made of.
type partials struct {
	ups      []store.Upload
	infos    []store.Info // of ups, as read
	size     int64        // the sum of the lengths known so far
	known    bool         // every length is known
	finished bool         // every partial upload is finished
}

// readPartials finds the partial uploads ids and adds up their lengths,
// failing when an upload is missing (an error wrapping store.ErrNotFound)
// or is not a partial upload, or when the lengths pass MaxSize or what an
// int64 holds.
func (h *Handler) readPartials(ctx context.Context, ids []string) (partials, error) {
	ps := partials{ups: make([]store.Upload, len(ids)), infos: make([]store.Info, len(ids)), known: true, finished: true}
	for i, id := range ids {
		up, err := h.store.GetUpload(ctx, id)
		if err != nil {
			return ps, err
		}
		pi, err := up.GetInfo(ctx)
		if err != nil {
			return ps, err
		}
		if !pi.IsPartial {
			return ps, ErrInvalidConcat.with("upload %s is not a partial upload", id)
		}
		ps.ups[i], ps.infos[i] = up, pi
		ps.finished = ps.finished && pi.Finished()
		if pi.SizeIsDeferred {
			ps.known = false
			continue
		}
		if pi.Size > math.MaxInt64-ps.size {
			return ps, ErrMaxSizeExceeded.with("the partial uploads add up to more than %d bytes", int64(math.MaxInt64))
		}
		ps.size += pi.Size
		if ps.size > h.sizeLimit() {
			return ps, ErrMaxSizeExceeded.with("the partial uploads add up to %d bytes or more; the limit is %d", ps.size, h.sizeLimit())
		}
	}
	return ps, nil
}

// finalInfo checks the partial uploads of a new final one and sets its
// size: their sum when every length is known, deferred otherwise. A final
// upload may name only partial uploads its client could append to itself:
// ones that exist and have not expired (parseConcat has checked that they
// are this handler's). Upload URLs are capabilities, so naming one proves
// the client was given it, which is all an append asks for.
func (h *Handler) finalInfo(ctx context.Context, ids []string, info *store.Info) *Error {
	ps, err := h.readPartials(ctx, ids)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvalidConcat.with("%v", err)
		}
		e, _ := toError(err)
		return e
	}
	now := h.now()
	for i, pi := range ps.infos {
		if h.expired(pi, now) {
			return ErrInvalidConcat.with("partial upload %s: not found", ids[i])
		}
	}
	info.IsFinal, info.PartialUploads = true, ids
	info.SizeIsDeferred = !ps.known
	if ps.known {
		info.Size = ps.size
	}
	return nil
}

// completeFinal concatenates a new final upload now if its partials are
// all finished, and otherwise remembers to when the last one finishes
// (tus concatenation-unfinished). No one else knows the new upload yet, so
// no lock is needed.
func (h *Handler) completeFinal(ctx context.Context, up store.Upload, info store.Info) (store.Info, *Error) {
	h.waiting.add(info.ID, info.PartialUploads)
	return h.tryConcat(ctx, up, info)
}

// tryConcat concatenates final upload up when all its partials are
// finished and returns its state. The caller holds up's lock, or up is
// not yet known to anyone. A final upload that can never be completed (a
// partial upload is gone, or their lengths add up past MaxSize) gets the
// error to answer with, every time it is asked about: nothing is stored
// to say so. Other failures are logged: the final upload stays incomplete,
// and HEAD, GET and the janitor try again.
func (h *Handler) tryConcat(ctx context.Context, up store.Upload, info store.Info) (store.Info, *Error) {
	ctx = context.WithoutCancel(ctx)
	ps, err := h.readPartials(ctx, info.PartialUploads)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.forget(info.ID)
		return info, ErrGone.with("a partial upload of this final upload is gone: %v", err)
	case errors.Is(err, ErrMaxSizeExceeded):
		h.forget(info.ID)
		e, _ := toError(err)
		return info, e
	case err != nil:
		h.log.Warn("final upload waits for a partial upload", "id", info.ID, "err", err)
		return info, nil
	case !ps.finished:
		return info, nil
	}
	if e := h.takeStorage(ps.size); e != nil {
		return info, e
	}
	start := time.Now()
	if err := h.concat.Concat(ctx, up, ps.ups); err != nil {
		h.storage.Release(ps.size)
		h.log.Error("concatenate uploads", "id", info.ID, "err", err)
		return info, nil
	}
	now, err := up.GetInfo(ctx)
	if err != nil {
		h.log.Error("concatenate uploads", "id", info.ID, "err", err)
		return info, nil
	}
	h.forget(info.ID)
	h.log.Info("upload finished", "id", info.ID, "size", now.Size, "partials", len(ps.ups), "concat_time", time.Since(start).Round(time.Millisecond))
	return now, nil
}

// completeWaiting concatenates the final uploads that were waiting for the
// partial upload that just finished.
func (h *Handler) completeWaiting(ctx context.Context, partial string) {
	for _, f := range h.waiting.finalsOf(partial) {
		h.withLock(ctx, f, 0, func(up store.Upload, info store.Info) {
			if info.IsFinal && !info.Finished() {
				if _, e := h.tryConcat(ctx, up, info); e != nil {
					h.log.Info("final upload cannot be completed", "id", f, "err", e)
				}
			}
		})
	}
}

// forget drops an upload from the waiting lists: a final upload that is
// complete or gone.
func (h *Handler) forget(final string) { h.waiting.forget(final) }

// maxWaiting bounds the entries of a waitList, one per partial upload of
// each final upload that waits: a final upload past it is not listed, and
// is completed when a HEAD, a GET or the janitor finds its partial
// uploads finished instead of at once.
const maxWaiting = 100000

// waitList remembers which final uploads wait for which partial uploads,
// so that a final upload is completed as soon as its last partial upload
// is. It is lost with the process; HEAD, GET and the janitor complete
// final uploads it does not know.
type waitList struct {
	mu      sync.Mutex
	finals  map[string][]string        // final ID → its partial IDs
	waiters map[string]map[string]bool // partial ID → final IDs
	entries int
}

// add lists final as waiting for partials, unless the list is full.
func (w *waitList) add(final string, partials []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.finals[final]; ok || w.entries+len(partials) > maxWaiting {
		return
	}
	if w.finals == nil {
		w.finals, w.waiters = map[string][]string{}, map[string]map[string]bool{}
	}
	w.finals[final] = partials
	w.entries += len(partials)
	for _, p := range partials {
		if w.waiters[p] == nil {
			w.waiters[p] = map[string]bool{}
		}
		w.waiters[p][final] = true
	}
}

// finalsOf returns the final uploads waiting for partial.
func (w *waitList) finalsOf(partial string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Collect(maps.Keys(w.waiters[partial]))
}

// forget removes final from the list.
func (w *waitList) forget(final string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	partials, ok := w.finals[final]
	if !ok {
		return
	}
	delete(w.finals, final)
	w.entries -= len(partials)
	for _, p := range partials {
		delete(w.waiters[p], final)
		if len(w.waiters[p]) == 0 {
			delete(w.waiters, p)
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
