package collectivetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/opennetworks/onetdp/collective"
)

// OpenGroup opens the n ranks of a group at once (open(rank) for each:
// transports rendezvous with one another while they open, so they must
// run together), fails t when any rank failed, and closes every opened
// transport, all at once, when t ends (also after a failure).
func OpenGroup[T collective.Transport](t testing.TB, n int, open func(rank int) (T, error)) []T {
	t.Helper()
	out := make([]T, n)
	ok := make([]bool, n)
	errs := Parallel(n, func(r int) error {
		tr, err := open(r)
		if err == nil {
			out[r], ok[r] = tr, true
		}
		return err
	})
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for r, tr := range out {
			if ok[r] {
				wg.Go(func() { tr.Close() })
			}
		}
		wg.Wait()
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return out
}
