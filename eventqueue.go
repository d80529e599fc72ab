package ferry

import "sync"

// eventQueue buffers a task's events until they are read, so the transfer
// never waits for its observer. Consecutive progress events collapse into
// the newest, which bounds the queue by the number of real events.
type eventQueue struct {
	mu     sync.Mutex
	items  []Event
	closed bool
	wake   chan struct{}
	ch     chan Event
}

func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	if _, ok := ev.(ProgressEvent); ok && len(q.items) > 0 {
		if _, last := q.items[len(q.items)-1].(ProgressEvent); last {
			q.items[len(q.items)-1] = ev
			return
		}
	}
	q.items = append(q.items, ev)
	q.signal()
}

func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.signal()
}

func (q *eventQueue) signal() {
	if q.wake != nil {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *eventQueue) subscribe() <-chan Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ch == nil {
		q.ch = make(chan Event)
		q.wake = make(chan struct{}, 1)
		go q.pump()
	}
	return q.ch
}

func (q *eventQueue) pump() {
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			closed := q.closed
			q.mu.Unlock()
			if closed {
				close(q.ch)
				return
			}
			<-q.wake
			continue
		}
		ev := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		q.ch <- ev
	}
}
