package main

import (
	"sync"

	"golang.org/x/sys/unix"
)

// lastErrors holds the last error message per calling OS thread. An
// exported function runs on the C thread that called it, so the thread id
// names the caller; a success clears the entry, so the map holds at most
// one message per thread that last failed.
var lastErrors struct {
	mu sync.Mutex
	m  map[int]string
}

// setLastError records msg ("" clears) for the calling thread.
func setLastError(msg string) {
	tid := unix.Gettid()
	lastErrors.mu.Lock()
	defer lastErrors.mu.Unlock()
	if msg == "" {
		delete(lastErrors.m, tid)
		return
	}
	if lastErrors.m == nil {
		lastErrors.m = map[int]string{}
	}
	lastErrors.m[tid] = msg
}

// lastError is the calling thread's last error message, "" after a
// success.
func lastError() string {
	tid := unix.Gettid()
	lastErrors.mu.Lock()
	defer lastErrors.mu.Unlock()
	return lastErrors.m[tid]
}

// copyOut copies s into dst as a NUL-terminated C string, truncating to
// fit (nothing when dst is empty), and returns len(s).
func copyOut(dst []byte, s string) int {
	if len(dst) > 0 {
		n := copy(dst[:len(dst)-1], s)
		dst[n] = 0
	}
	return len(s)
}
