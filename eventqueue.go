package ferry

import "sync"

// eventQueue buffers a task's events until they are read, so the transfer
// never waits for its observer. Consecutive progress events collapse into
// the newest, which bounds the queue by the number of real events.
type eventQueue struct {
	mu        sync.Mutex
	items     []Event
	closed    bool
	abandoned bool
	wake      chan struct{}
	quit      chan struct{}
	ch        chan Event
}

// maxQueued bounds the events waiting for a reader.
const maxQueued = 1024

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
	if len(q.items) >= maxQueued {
		q.items[0] = nil
		q.items = q.items[1:]
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
		q.quit = make(chan struct{})
		if q.abandoned {
			close(q.ch)
		} else {
			go q.pump()
		}
	}
	return q.ch
}

// abandon stops delivering to a reader that went away: the pump drops what
// is queued and closes the channel.
func (q *eventQueue) abandon() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.abandoned {
		return
	}
	q.abandoned = true
	if q.quit != nil {
		close(q.quit)
	}
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
			select {
			case <-q.wake:
			case <-q.quit:
				close(q.ch)
				return
			}
			continue
		}
		ev := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		select {
		case q.ch <- ev:
		case <-q.quit:
			close(q.ch)
			return
		}
	}
}
