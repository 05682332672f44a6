package stack

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/rendezvous"
)

// sharedStores are the stores this process joined, by where they are and
// which rank joined: communicators opened on the same master share one
// store (rank 0 can serve a port only once), the last Close closes it.
var sharedStores struct {
	mu sync.Mutex
	m  map[string]*sharedStore
}

type sharedStore struct {
	ready chan struct{} // closed once store or err is set
	store collective.Store
	err   error
	refs  int
	// opened counts the communicators opened on it so far; the nth gets
	// the default key prefix "comm<n>" (n > 1).
	opened int
}

// joinStore returns the job's store, the function that lets go of it and
// how many communicators (this one included) were opened on it. A store in
// CommOptions is the caller's: release does not close it. release's cause,
// when not nil, is why this rank gives up on the communicator: rank 0 hands
// it to the ranks still waiting on its store server. A single-rank job with
// no store URL named gets an in-memory store.
func joinStore(ctx context.Context, o CommOptions, l rendezvous.Launch, lookup rendezvous.Lookup, timeout time.Duration) (collective.Store, func(cause error) error, int, error) {
	if o.Store != nil {
		return o.Store, func(error) error { return nil }, 1, nil
	}
	url := o.StoreURL
	if url == "" {
		url, _ = lookup("ONET_STORE")
	}
	if l.Size == 1 && url == "" {
		// One rank meets nobody: no port to serve (the launcher's
		// MASTER_PORT may well be taken by another store).
		s := collective.NewMemStore()
		return s, func(error) error { return s.Close() }, 1, nil
	}
	key := url + "|" + l.MasterHostPort() + "|" + strconv.Itoa(l.Rank) + "/" + strconv.Itoa(l.Size)
	sharedStores.mu.Lock()
	sh := sharedStores.m[key]
	creator := sh == nil
	if creator {
		sh = &sharedStore{ready: make(chan struct{})}
		if sharedStores.m == nil {
			sharedStores.m = map[string]*sharedStore{}
		}
		sharedStores.m[key] = sh
	}
	sh.refs++
	sharedStores.mu.Unlock()
	if creator {
		// Joining may wait for rank 0's server: not under the lock, which
		// another rank of this process may need to serve it.
		sh.store, sh.err = rendezvous.Join(ctx, rendezvous.JoinOptions{Launch: l, StoreURL: url, Lookup: lookup, Timeout: timeout})
		if sh.err != nil {
			sh.store = nil // Join may return a typed nil *TCPStore with its error
		}
		close(sh.ready)
	}
	select {
	case <-sh.ready:
	case <-ctx.Done():
		sh.unref(key, nil)
		return nil, nil, 0, fmt.Errorf("join store: %w", ctx.Err())
	}
	if sh.err != nil {
		sh.unref(key, nil)
		return nil, nil, 0, sh.err
	}
	sharedStores.mu.Lock()
	sh.opened++
	nth := sh.opened
	sharedStores.mu.Unlock()
	var once sync.Once
	release := func(cause error) (err error) {
		once.Do(func() { err = sh.unref(key, cause) })
		return err
	}
	return sh.store, release, nth, nil
}

// unref drops one reference; the last closes the store (once joined),
// stopping rank 0's server with cause when there is one.
func (sh *sharedStore) unref(key string, cause error) error {
	sharedStores.mu.Lock()
	sh.refs--
	last := sh.refs == 0
	if last && sharedStores.m[key] == sh {
		delete(sharedStores.m, key)
	}
	sharedStores.mu.Unlock()
	if !last {
		return nil
	}
	<-sh.ready // the creator always finishes its Join (bounded by its ctx)
	if sh.store == nil {
		return nil
	}
	var err error
	if st, ok := sh.store.(interface{ Stop(error) error }); ok && cause != nil {
		err = st.Stop(cause)
	} else {
		err = sh.store.Close()
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}
