package collective

import "testing"

func TestTagQueues(t *testing.T) {
	var q TagQueues[int]
	if _, ok := q.Pop(1); ok {
		t.Fatal("pop from an empty queue")
	}
	q.Push(1, 10)
	q.Push(2, 20)
	q.Push(1, 11)
	for _, want := range []int{10, 11} {
		if v, ok := q.Pop(1); !ok || v != want {
			t.Fatalf("pop tag 1 = %d, %v; want %d", v, ok, want)
		}
	}
	if _, ok := q.Pop(1); ok || len(q.m) != 1 {
		t.Fatalf("tag 1 not dropped when empty: %v", q.m)
	}
	var got []int
	q.Push(3, 30)
	q.Drain(func(v int) { got = append(got, v) })
	if len(got) != 2 || len(q.m) != 0 {
		t.Fatalf("drain gave %v, left %v", got, q.m)
	}
}
