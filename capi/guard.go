package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// protect runs fn for an exported function: it records fn's error (or
// clears the thread's last error on success) and maps it to a status, and
// turns a panic into statusInternal with the panic's message and the
// location it came from, so that a Go bug never aborts the host process
// from a call. (Panics in the communicator's own goroutines cannot be
// caught here; those are bugs that crash like any Go program.)
//
// A fault on a bad caller pointer touched on this goroutine (a blocking
// call runs its operation here) panics too instead of crashing
// (debug.SetPanicOnFault), so it also comes back as statusInternal.
func protect(what string, fn func() error) (st status) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			msg := fmt.Sprintf("%s: %v: panic: %v%s", what, errInternal, r, panicSite())
			setLastError(msg)
			st = statusInternal
		}
	}()
	err := fn()
	if err == nil {
		setLastError("")
		return statusOK
	}
	setLastError(err.Error())
	return statusOf(err)
}

// panicSite names the first frame of the panicking code outside the
// runtime, " (at file:line)", or "".
func panicSite() string {
	pc := make([]uintptr, 32)
	n := runtime.Callers(3, pc)
	frames := runtime.CallersFrames(pc[:n])
	for {
		f, more := frames.Next()
		if f.Function != "" && !isRuntime(f.Function) {
			return fmt.Sprintf(" (at %s:%d)", f.File, f.Line)
		}
		if !more {
			return ""
		}
	}
}

func isRuntime(fn string) bool {
	return len(fn) >= 8 && fn[:8] == "runtime."
}
