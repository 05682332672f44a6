// Package par runs one function per rank (or host, or index) on its own
// goroutine: the "every rank at once" loop that the benchmarks, the CLI and
// the collective test helpers share.
package par

import "sync"

// Each calls fn(i) for every i in [0, n), each on its own goroutine, and
// returns the errors by index once every call returned.
func Each(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errs
}

// Start is Each without waiting: the errors arrive on the channel once
// every call returned, so that the caller can do other work (start the
// calls' common clock, say) meanwhile.
func Start(n int, fn func(i int) error) <-chan []error {
	out := make(chan []error, 1)
	go func() { out <- Each(n, fn) }()
	return out
}
