//go:build !race

package shm

import "unsafe"

func raceWord(string) unsafe.Pointer { return nil }
func (r *ring) raceRelease()         {}
func (r *ring) raceAcquire()         {}
