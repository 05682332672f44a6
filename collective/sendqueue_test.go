package collective_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/opennetworks/onetdp/collective"
)

// TestSendQueueInlineAndQueued: the first message on an idle queue goes
// inline; messages offered meanwhile queue in order; an unfinished inline
// message goes back to the front; the writer takes them in order.
func TestSendQueueInlineAndQueued(t *testing.T) {
	var q collective.SendQueue[int]
	if inline, err := q.Begin(1); !inline || err != nil {
		t.Fatalf("idle queue: inline %v, %v", inline, err)
	}
	for _, r := range []int{2, 3} {
		if inline, err := q.Begin(r); inline || err != nil {
			t.Fatalf("busy queue: message %d inline %v, %v", r, inline, err)
		}
	}
	if err := q.EndInline(1, false); err != nil {
		t.Fatal(err)
	}
	got, ok := q.Take(nil, 2)
	if !ok || !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("take 2: %v %v, want [1 2]", got, ok)
	}
	if inline, _ := q.Begin(4); inline {
		t.Fatal("message 4 went inline while the writer holds the queue")
	}
	q.Release()
	if got, ok = q.Take(got[:0], 10); !ok || !slices.Equal(got, []int{3, 4}) {
		t.Fatalf("take: %v %v, want [3 4]", got, ok)
	}
	q.Release()
	if inline, err := q.Begin(5); !inline || err != nil {
		t.Fatalf("idle again: inline %v, %v", inline, err)
	}
	if err := q.EndInline(5, true); err != nil {
		t.Fatal(err)
	}
}

// TestSendQueueFail: Fail hands back what waited, wakes the writer, and
// every later call reports the first failure; an unfinished inline message
// is not queued after a failure.
func TestSendQueueFail(t *testing.T) {
	var q collective.SendQueue[int]
	q.Begin(1) // inline
	q.Begin(2)
	q.Begin(3)
	var wg sync.WaitGroup
	var writerOK bool
	wg.Go(func() {
		q.EndInline(1, true) // lets the writer take 2 and 3
		_, writerOK = q.Take(nil, 1)
		q.Release()
		_, writerOK = q.Take(nil, 1)
	})
	first := errors.New("connection reset")
	wg.Wait()
	if !writerOK {
		t.Fatal("the writer found the queue failed before Fail")
	}
	var waiting []int
	done := make(chan bool)
	go func() {
		q.Release()
		_, ok := q.Take(nil, 1) // waits: nothing queued
		done <- ok
	}()
	waiting = q.Fail(first)
	if ok := <-done; ok {
		t.Error("a writer waiting in Take was not told the queue failed")
	}
	if len(waiting) != 0 {
		t.Errorf("waiting %v, want none (2 and 3 were taken)", waiting)
	}
	if q.Fail(errors.New("second")) != nil || !errors.Is(q.Err(), first) {
		t.Errorf("Err %v, want the first failure", q.Err())
	}
	if inline, err := q.Begin(4); inline || !errors.Is(err, first) {
		t.Errorf("Begin after Fail: inline %v, %v", inline, err)
	}

	var q2 collective.SendQueue[int]
	q2.Begin(1)
	q2.Begin(2)
	if w := q2.Fail(first); !slices.Equal(w, []int{2}) {
		t.Errorf("Fail returned %v, want [2]", w)
	}
	if err := q2.EndInline(1, false); !errors.Is(err, first) {
		t.Errorf("EndInline of an unfinished message after Fail: %v, want the failure", err)
	}
	if got, ok := q2.Take(nil, 5); ok || len(got) != 0 {
		t.Errorf("Take after Fail: %v %v", got, ok)
	}
}
