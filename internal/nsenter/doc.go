// Package nsenter runs code inside another network namespace without
// leaking a switched OS thread to the rest of the program: the work runs on a
// fresh goroutine locked to its thread, and a thread that cannot be switched
// back stays locked so the runtime retires it.
package nsenter
