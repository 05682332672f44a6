package collective

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestMemStore(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
	got := make(chan []byte, 1)
	go func() {
		v, err := s.Get(ctx, "k")
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	time.Sleep(5 * time.Millisecond)
	if err := s.Set(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if v := <-got; string(v) != "v1" {
		t.Fatalf("waiting Get = %q, want v1", v)
	}
	for i, want := range []int64{3, 1} {
		n, err := s.Add(ctx, "n", []int64{3, -2}[i])
		if err != nil || n != want {
			t.Fatalf("Add = %d, %v; want %d", n, err, want)
		}
	}
	if v, _ := s.Get(ctx, "n"); string(v) != "1" {
		t.Fatalf("counter reads %q, want 1", v)
	}
	if _, err := s.Add(ctx, "k", 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Add on a non-integer: %v, want ErrInvalidArgument", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := s.Get(tctx, "absent"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Get of an absent key: %v, want ErrTimeout", err)
	}
	s.Close()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
}
