package spin

import "syscall"

// osYield is sched_yield(2): the CPU's other runnable threads go first.
func osYield() { syscall.Syscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
