package hlsdownload

import (
	"context"
	"sync"
)

// queue holds the requests waiting for a worker, in the order they were
// planned, so that a live recording's producer never waits for workers.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	groups []*group
	closed bool
}

func newQueue() *queue {
	q := &queue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *queue) push(g *group) {
	q.mu.Lock()
	q.groups = append(q.groups, g)
	q.mu.Unlock()
	q.cond.Signal()
}

// close says no more requests will come: pop returns false once the queue
// is empty.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// pop waits for the next request; false once the queue is closed and empty
// or ctx is done.
func (q *queue) pop(ctx context.Context) (*group, bool) {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.groups) == 0 && !q.closed && ctx.Err() == nil {
		q.cond.Wait()
	}
	if ctx.Err() != nil || len(q.groups) == 0 {
		return nil, false
	}
	g := q.groups[0]
	q.groups[0] = nil
	q.groups = q.groups[1:]
	return g, true
}
