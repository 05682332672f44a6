package stack

import (
	"os"
	"runtime"
	"sync"
)

// LaunchedProcs gives a process that is one rank of a launched job
// (torchrun, mpirun, srun: one rank per process, as `onetdp bench
// --launcher` and libonet run) the Go runtime setting measured best for
// it: one thread running goroutines (GOMAXPROCS=1), unless the GOMAXPROCS
// environment variable chose otherwise. It acts once per process and
// returns the GOMAXPROCS in force.
//
// Why: a rank's work is one goroutine waiting for messages and reducing;
// with more threads its transport's goroutines wake on other cores (a
// cross-core wake-up per message) and a spinning waiter has a second
// thread to fight, and with ranks on every core the threads outnumber
// them. 8 B allreduce with 16 launched ranks on 16 cores: tcp 358-390 µs
// with GOMAXPROCS=16, 197-319 µs with 1; RoCEv2 over AF_XDP 1.2-1.3 ms
// and 89-123 µs (2 MiB: tcp equal, RoCEv2 33-35 ms and 20 ms). With 2
// ranks on 2 cores: RoCEv2 32-48 µs and 15-31 µs.
func LaunchedProcs() int {
	launchedOnce.Do(func() {
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(1)
		}
	})
	return runtime.GOMAXPROCS(0)
}

var launchedOnce sync.Once
