//go:build !linux

package spin

// osYield has no portable system call behind it elsewhere.
func osYield() {}
