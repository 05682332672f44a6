package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// testStore runs the collective.Store contract against stores made by mk;
// every call of mk must return a client of the same store.
func testStore(t *testing.T, mk func(t *testing.T) collective.Store) {
	t.Run("SetGet", func(t *testing.T) {
		s := mk(t)
		ctx := context.Background()
		if err := s.Set(ctx, "a", []byte("one")); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, "a", []byte("two")); err != nil {
			t.Fatal(err)
		}
		v, err := s.Get(ctx, "a")
		if err != nil || string(v) != "two" {
			t.Fatalf("get a = %q, %v; want two", v, err)
		}
		if err := s.Set(ctx, "empty", nil); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(ctx, "empty"); err != nil || len(v) != 0 {
			t.Fatalf("get empty = %q, %v", v, err)
		}
	})
	t.Run("GetWaits", func(t *testing.T) {
		s1, s2 := mk(t), mk(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got := make(chan string, 1)
		go func() {
			v, err := s1.Get(ctx, "late")
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- string(v)
		}()
		time.Sleep(20 * time.Millisecond)
		select {
		case v := <-got:
			t.Fatalf("get returned %q before set", v)
		default:
		}
		if err := s2.Set(ctx, "late", []byte("here")); err != nil {
			t.Fatal(err)
		}
		if v := <-got; v != "here" {
			t.Fatalf("get late = %q, want here", v)
		}
	})
	t.Run("GetTimeout", func(t *testing.T) {
		s := mk(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		_, err := s.Get(ctx, "never")
		if !errors.Is(err, collective.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("get never: %v, want ErrTimeout and DeadlineExceeded", err)
		}
		// The store still works afterwards.
		if err := s.Set(context.Background(), "never", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(context.Background(), "never"); err != nil || string(v) != "x" {
			t.Fatalf("get after timeout = %q, %v", v, err)
		}
	})
	t.Run("AddConcurrent", func(t *testing.T) {
		const clients, adds = 4, 25
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			s := mk(t)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range adds {
					if _, err := s.Add(ctx, "ctr", 2); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		s := mk(t)
		n, err := s.Add(ctx, "ctr", -1)
		if err != nil || n != clients*adds*2-1 {
			t.Fatalf("add = %d, %v; want %d", n, err, clients*adds*2-1)
		}
		v, err := s.Get(ctx, "ctr")
		if err != nil || string(v) != strconv.Itoa(clients*adds*2-1) {
			t.Fatalf("get ctr = %q, %v", v, err)
		}
		if err := s.Set(ctx, "text", []byte("abc")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Add(ctx, "text", 1); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Fatalf("add to text: %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("BadKeys", func(t *testing.T) {
		s := mk(t)
		ctx := context.Background()
		if err := s.Set(ctx, "", []byte("x")); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Fatalf("empty key: %v", err)
		}
		if err := s.Set(ctx, string(make([]byte, MaxKeyLen+1)), nil); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Fatalf("long key: %v", err)
		}
		if err := s.Set(ctx, "big", make([]byte, MaxValueLen+1)); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Fatalf("long value: %v", err)
		}
		big := make([]byte, MaxValueLen)
		big[len(big)-1] = 7
		if err := s.Set(ctx, "big", big); err != nil {
			t.Fatalf("max value: %v", err)
		}
		if v, err := s.Get(ctx, "big"); err != nil || len(v) != MaxValueLen || v[len(v)-1] != 7 {
			t.Fatalf("get max value: %d bytes, %v", len(v), err)
		}
		odd := "a/b\x00c/../" + string(make([]byte, 300))
		if err := s.Set(ctx, odd, []byte("odd")); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(ctx, odd); err != nil || string(v) != "odd" {
			t.Fatalf("get odd key = %q, %v", v, err)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		s := mk(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := s.Get(ctx, "closed-wait")
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, collective.ErrClosed) {
			t.Fatalf("pending get after close: %v, want ErrClosed", err)
		}
		if err := s.Set(ctx, "x", nil); !errors.Is(err, collective.ErrClosed) {
			t.Fatalf("set after close: %v, want ErrClosed", err)
		}
	})
}

func TestTCPStoreContract(t *testing.T) {
	srv, err := ServeTCPStore(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	testStore(t, func(t *testing.T) collective.Store {
		s, err := DialTCPStore(context.Background(), srv.Addr().String(), TCPStoreOptions{DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestFileStoreContract(t *testing.T) {
	dir := t.TempDir()
	testStore(t, func(t *testing.T) collective.Store {
		s, err := OpenFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestTCPStoreManyClients has 16 clients each set a key and read all the
// others' (a rendezvous of 16 ranks), with concurrent calls on one client.
func TestTCPStoreManyClients(t *testing.T) {
	srv, err := ServeTCPStore(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const n = 16
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n*n)
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := DialTCPStore(ctx, srv.Addr().String(), TCPStoreOptions{})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			var inner sync.WaitGroup
			for p := range n { // gets first, in parallel on one connection
				inner.Add(1)
				go func() {
					defer inner.Done()
					v, err := s.Get(ctx, fmt.Sprintf("addr/%d", p))
					if err == nil && string(v) != fmt.Sprintf("rank-%d", p) {
						err = fmt.Errorf("rank %d read %q for %d", r, v, p)
					}
					if err != nil {
						errs <- err
					}
				}()
			}
			if err := s.Set(ctx, fmt.Sprintf("addr/%d", r), fmt.Appendf(nil, "rank-%d", r)); err != nil {
				errs <- err
			}
			inner.Wait()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestJoinDialFailureIsNil: a rank that cannot reach the store gets a
// plain nil store with the error, never a typed nil a caller could Close.
func TestJoinDialFailureIsNil(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Join(ctx, JoinOptions{
		Launch:  Launch{Rank: 1, Size: 2, MasterAddr: "127.0.0.1", MasterPort: port},
		Timeout: 300 * time.Millisecond,
	})
	if err == nil {
		t.Fatal("join reached a store nobody serves")
	}
	if s != nil {
		t.Fatalf("join failed with %v but returned store %#v (a typed nil?)", err, s)
	}
}
