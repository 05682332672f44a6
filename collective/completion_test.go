package collective_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

func TestCompletion(t *testing.T) {
	var c collective.Completion
	c.Init()
	if done, err := c.Test(); done || err != nil {
		t.Fatalf("fresh: Test = %v, %v", done, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.Wait(ctx); !errors.Is(err, collective.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past the deadline: %v, want ErrTimeout and DeadlineExceeded", err)
	}

	want := errors.New("boom")
	var wg sync.WaitGroup
	wins := make(chan bool, 8)
	for i := range 8 {
		wg.Go(func() {
			e := want
			if i > 0 {
				e = nil
			}
			<-time.After(time.Millisecond)
			wins <- c.Complete(e)
		})
	}
	waited := c.Wait(context.Background())
	if done, err := c.Test(); !done || err != waited {
		t.Fatalf("Wait returned %v, then Test = %v, %v", waited, done, err)
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d Complete calls won, want exactly 1", n)
	}
	done, err1 := c.Test()
	err2 := c.Wait(context.Background())
	if !done || err1 != err2 {
		t.Fatalf("after Complete: Test = %v, %v; Wait = %v", done, err1, err2)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Complete")
	}
	if c.Complete(errors.New("late")) {
		t.Fatal("a late Complete won")
	}
	if _, err := c.Test(); err != err1 {
		t.Fatalf("a late Complete changed the error to %v", err)
	}
}
