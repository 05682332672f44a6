package collective

import "sync"

// SendQueue orders the messages of one connection between the goroutines
// that send and the connection's writer goroutine, for transports that
// write a stream (transport/tcp, transport/shm): a sender writes its
// message inline when nothing is being written and nothing waits, else the
// message waits in the queue for the writer; so messages leave in the
// order they were sent, and a small message on an idle connection leaves
// without a goroutine hand-off. After Fail every call reports the failure.
//
// The zero value is ready to use; a SendQueue must not be copied after
// first use. All methods are safe for concurrent use.
type SendQueue[R any] struct {
	mu    sync.Mutex
	cond  sync.Cond
	queue []R
	busy  bool // a write (inline or the writer's) is in progress
	err   error
}

func (q *SendQueue[R]) lock() {
	q.mu.Lock()
	if q.cond.L == nil {
		q.cond.L = &q.mu
	}
}

// Begin offers r. inline: the caller writes r now and then calls
// EndInline. Otherwise r waits for the writer (err nil), or the queue has
// failed (err, and r is not queued: the caller completes it).
func (q *SendQueue[R]) Begin(r R) (inline bool, err error) {
	q.lock()
	defer q.mu.Unlock()
	switch {
	case q.err != nil:
		return false, q.err
	case q.busy || len(q.queue) > 0:
		q.queue = append(q.queue, r)
		q.cond.Signal()
		return false, nil
	}
	q.busy = true
	return true, nil
}

// EndInline ends an inline write. When r was not written completely
// (done false) it goes to the front of the queue for the writer, unless
// the queue failed meanwhile: then the failure is returned and r is the
// caller's to complete.
func (q *SendQueue[R]) EndInline(r R, done bool) error {
	q.lock()
	defer q.mu.Unlock()
	q.busy = false
	if !done {
		if q.err != nil {
			return q.err
		}
		var zero R
		q.queue = append(q.queue, zero)
		copy(q.queue[1:], q.queue)
		q.queue[0] = r
	}
	if len(q.queue) > 0 {
		q.cond.Signal()
	}
	return nil
}

// Take waits until messages wait and nothing is being written, then
// appends up to max of them, from the front, to dst, removes them from the
// queue and makes the caller the writer until Release. ok is false once
// the queue failed (the writer ends; messages still queued were handed to
// Fail's caller).
func (q *SendQueue[R]) Take(dst []R, max int) (_ []R, ok bool) {
	q.lock()
	defer q.mu.Unlock()
	for q.err == nil && (q.busy || len(q.queue) == 0) {
		q.cond.Wait()
	}
	if q.err != nil {
		return dst, false
	}
	n := min(len(q.queue), max)
	dst = append(dst, q.queue[:n]...)
	clear(q.queue[:n])
	q.queue = q.queue[n:]
	if len(q.queue) == 0 {
		q.queue = nil
	}
	q.busy = true
	return dst, true
}

// Release ends the writer's turn that Take began.
func (q *SendQueue[R]) Release() {
	q.lock()
	q.busy = false
	q.mu.Unlock()
}

// Fail fails the queue with err (the first failure stays) and returns the
// messages that were waiting: the caller completes them. It wakes a
// writer waiting in Take.
func (q *SendQueue[R]) Fail(err error) []R {
	q.lock()
	defer q.mu.Unlock()
	var waiting []R
	if q.err == nil {
		q.err = err
		waiting, q.queue = q.queue, nil
	}
	q.cond.Broadcast()
	return waiting
}

// Err is the failure, nil before Fail.
func (q *SendQueue[R]) Err() error {
	q.lock()
	defer q.mu.Unlock()
	return q.err
}
