package main

import "sync"

// table maps 64-bit ids to values: what crosses the C boundary instead of
// Go pointers. Ids start at 1 and are never reused, so a stale id is
// unknown rather than someone else's. Safe for concurrent use.
type table[T any] struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]T
}

// add stores v under a fresh id.
func (t *table[T]) add(v T) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[uint64]T{}
	}
	t.next++
	t.m[t.next] = v
	return t.next
}

// get returns id's value.
func (t *table[T]) get(id uint64) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.m[id]
	return v, ok
}

// remove deletes id and returns its value; false when it was not there
// (never added, or removed already).
func (t *table[T]) remove(id uint64) (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok := t.m[id]
	if ok {
		delete(t.m, id)
	}
	return v, ok
}

// len is the number of live ids.
func (t *table[T]) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
