// Package spin holds what the busy-polling loops of the transports share:
// how a waiter that spins gives way.
package spin

import (
	"runtime"
	"time"
)

// YieldAfter is how long a spinning waiter goes without anything arriving
// before it gives way to the other processes of its CPU too.
const YieldAfter = 20 * time.Microsecond

// Idle gives way, from a waiter that spins and has seen nothing arrive
// for idle: to the process's other goroutines (runtime.Gosched) and, from
// YieldAfter on, to the other threads and processes of its CPU
// (sched_yield on Linux), so that it does not keep the rank it waits for
// off a shared core. 8 B allreduce over RoCEv2 with four launched ranks
// on two cores: 660-740 µs spinning with Gosched alone, 115-177 µs with
// both, 430-540 µs parked. A message that comes soon (a rank alone on its
// core) is waited for without the system call.
func Idle(idle time.Duration) {
	runtime.Gosched()
	if idle >= YieldAfter {
		osYield()
	}
}
