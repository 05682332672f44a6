package collective

// TagQueues keeps one FIFO per tag: the receives a transport has posted,
// or the messages that arrived before their receive, matched in order per
// (peer, tag) as the Transport contract asks. Empty queues are dropped,
// so a long run of distinct tags leaves nothing behind. Not safe for
// concurrent use (transports hold their peer lock); the zero value is
// ready.
type TagQueues[T any] struct {
	m map[Tag][]T
}

// Push appends v to tag's queue.
func (q *TagQueues[T]) Push(tag Tag, v T) {
	if q.m == nil {
		q.m = map[Tag][]T{}
	}
	q.m[tag] = append(q.m[tag], v)
}

// Pop takes the head of tag's queue.
func (q *TagQueues[T]) Pop(tag Tag) (v T, ok bool) {
	s := q.m[tag]
	if len(s) == 0 {
		return v, false
	}
	v = s[0]
	if len(s) == 1 {
		delete(q.m, tag)
	} else {
		var zero T
		s[0] = zero
		q.m[tag] = s[1:]
	}
	return v, true
}

// Drain empties every queue, calling fn for each element.
func (q *TagQueues[T]) Drain(fn func(T)) {
	for tag, s := range q.m {
		for _, v := range s {
			fn(v)
		}
		delete(q.m, tag)
	}
}
