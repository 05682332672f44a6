//go:build race

package shm

import (
	"runtime"
	"sync"
	"unsafe"
)

// The race detector cannot see the happens-before edge a consumer's
// atomic load of head takes from the producer's store when head lives in
// a mapping outside the Go heap, so a payload copied out of the ring would
// look unordered with the sender's earlier use of its buffer. Under -race
// both ends of a ring in one process share a Go-heap word per ring file,
// released before each head store and acquired after each head load.
var raceWords sync.Map // ring file path -> *uint64

func raceWord(path string) unsafe.Pointer {
	v, _ := raceWords.LoadOrStore(path, new(uint64))
	return unsafe.Pointer(v.(*uint64))
}

func (r *ring) raceRelease() { runtime.RaceReleaseMerge(r.raceAddr) }
func (r *ring) raceAcquire() { runtime.RaceAcquire(r.raceAddr) }
