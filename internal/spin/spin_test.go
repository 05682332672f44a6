package spin_test

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/internal/spin"
)

// TestIdleLetsOthersRun: on one thread, a goroutine spinning with Idle
// lets another goroutine of the process run at once (not only when the
// scheduler preempts the spinner, some milliseconds and many spins on),
// idle or long idle.
func TestIdleLetsOthersRun(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, idle := range []time.Duration{0, spin.YieldAfter} {
		var done atomic.Bool
		go func() { done.Store(true) }()
		spins := 0
		for !done.Load() {
			spin.Idle(idle)
			if spins++; spins > 3 {
				t.Fatalf("idle %v: the other goroutine did not run in %d spins", idle, spins)
			}
		}
	}
}
