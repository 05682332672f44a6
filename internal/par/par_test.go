package par

import (
	"errors"
	"sync/atomic"
	"testing"
)

func TestEach(t *testing.T) {
	var calls atomic.Int32
	boom := errors.New("boom")
	errs := Each(5, func(i int) error {
		calls.Add(1)
		if i == 3 {
			return boom
		}
		return nil
	})
	if calls.Load() != 5 || len(errs) != 5 {
		t.Fatalf("%d calls, %d errors, want 5 and 5", calls.Load(), len(errs))
	}
	for i, err := range errs {
		if (i == 3) != (err == boom) {
			t.Errorf("errs[%d] = %v", i, err)
		}
	}
	if errs := Each(0, func(int) error { return boom }); len(errs) != 0 {
		t.Errorf("Each(0) = %v", errs)
	}
}

// TestStartConcurrent: every call runs at once (each waits for all the
// others to start), and the errors come after the last returned.
func TestStartConcurrent(t *testing.T) {
	const n = 4
	started := make(chan struct{}, n)
	release := make(chan struct{})
	errc := Start(n, func(i int) error {
		started <- struct{}{}
		<-release
		return nil
	})
	for range n {
		<-started
	}
	select {
	case <-errc:
		t.Fatal("errors delivered before the calls returned")
	default:
	}
	close(release)
	if errs := <-errc; len(errs) != n {
		t.Fatalf("%d errors, want %d", len(errs), n)
	}
}
