package collective

import (
	"context"
	"fmt"
	"strconv"
	"sync"
)

// Store is the key-value rendezvous ranks meet through before they can talk
// to each other (torch.distributed's c10d Store): transports publish their
// endpoints in it and read their peers'. Implementations are safe for
// concurrent use.
type Store interface {
	// Set stores value under key, replacing what was there.
	Set(ctx context.Context, key string, value []byte) error
	// Get returns the value of key, waiting until some rank sets it or ctx
	// ends (then the error wraps ErrTimeout or ctx's error).
	Get(ctx context.Context, key string) ([]byte, error)
	// Add adds delta to the integer stored under key (0 if unset) and
	// returns the new value; the value reads back through Get as decimal.
	Add(ctx context.Context, key string, delta int64) (int64, error)
	// Close releases the store's connection (or, for the server, stops
	// serving).
	Close() error
}

// MemStore is a Store inside one process, for tests and for ranks that
// all live in one process. The zero value is not usable; use NewMemStore.
type MemStore struct {
	mu     sync.Mutex
	kv     map[string][]byte
	wait   map[string]chan struct{}
	closed bool
}

var _ Store = (*MemStore)(nil)

// NewMemStore makes an empty in-process store.
func NewMemStore() *MemStore {
	return &MemStore{kv: map[string][]byte{}, wait: map[string]chan struct{}{}}
}

// Set implements Store.
func (s *MemStore) Set(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("store set %q: %w", key, ErrClosed)
	}
	s.kv[key] = append([]byte(nil), value...)
	if c, ok := s.wait[key]; ok {
		close(c)
		delete(s.wait, key)
	}
	return nil
}

// Get implements Store.
func (s *MemStore) Get(ctx context.Context, key string) ([]byte, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, fmt.Errorf("store get %q: %w", key, ErrClosed)
		}
		if v, ok := s.kv[key]; ok {
			s.mu.Unlock()
			return append([]byte(nil), v...), nil
		}
		c, ok := s.wait[key]
		if !ok {
			c = make(chan struct{})
			s.wait[key] = c
		}
		s.mu.Unlock()
		select {
		case <-c:
		case <-ctx.Done():
			return nil, fmt.Errorf("store get %q: %w: %w", key, ErrTimeout, ctx.Err())
		}
	}
}

// Add implements Store.
func (s *MemStore) Add(_ context.Context, key string, delta int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("store add %q: %w", key, ErrClosed)
	}
	var n int64
	if v, ok := s.kv[key]; ok {
		var err error
		if n, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return 0, fmt.Errorf("store add %q: value %q is not an integer: %w", key, v, ErrInvalidArgument)
		}
	}
	n += delta
	s.kv[key] = strconv.AppendInt(nil, n, 10)
	if c, ok := s.wait[key]; ok {
		close(c)
		delete(s.wait, key)
	}
	return n, nil
}

// Close implements Store: pending and later calls fail with ErrClosed.
func (s *MemStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for k, c := range s.wait {
		close(c)
		delete(s.wait, k)
	}
	return nil
}
