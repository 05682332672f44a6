package dataplane_test

import (
	"runtime"
	"testing"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
)

// TestSpinSlotsBounded: at most half the processors (at least one) spin
// at once; a slot given back can be taken again. (No port of this test
// binary is open here: the tests of this package do not run in parallel.)
func TestSpinSlotsBounded(t *testing.T) {
	want := max(1, runtime.GOMAXPROCS(0)/2)
	if got := dataplane.MaxSpinners(); got != want {
		t.Fatalf("MaxSpinners %d, want %d", got, want)
	}
	held := 0
	for held <= want && dataplane.TakeSpinSlot() {
		held++
	}
	defer func() {
		for range held {
			dataplane.ReleaseSpinSlot()
		}
	}()
	if held != want {
		t.Fatalf("took %d spin slots, want exactly %d", held, want)
	}
	dataplane.ReleaseSpinSlot()
	held--
	if !dataplane.TakeSpinSlot() {
		t.Fatal("a slot given back could not be taken again")
	}
	held++
}

// TestSpinSlotsNoneWithManyPorts: with more than GOMAXPROCS/2+1
// busy-polling ports open in the process nobody spins.
func TestSpinSlotsNoneWithManyPorts(t *testing.T) {
	n := int32(runtime.GOMAXPROCS(0)/2 + 2)
	dataplane.AddBusyPorts(n)
	defer dataplane.AddBusyPorts(-n)
	if dataplane.TakeSpinSlot() {
		dataplane.ReleaseSpinSlot()
		t.Fatalf("%d busy-polling ports on %d processors: a spin slot was handed out", n, runtime.GOMAXPROCS(0))
	}
	dataplane.AddBusyPorts(-2)
	defer dataplane.AddBusyPorts(2)
	if !dataplane.TakeSpinSlot() {
		t.Fatalf("%d busy-polling ports on %d processors: no spin slot", n-2, runtime.GOMAXPROCS(0))
	}
	dataplane.ReleaseSpinSlot()
}

// TestAFXDPBusyPollWithoutSpinSlot: a busy-polling port that finds every
// spin slot taken parks in the netpoller instead, and still receives
// everything.
func TestAFXDPBusyPollWithoutSpinSlot(t *testing.T) {
	held := 0
	for dataplane.TakeSpinSlot() {
		held++
	}
	defer func() {
		for range held {
			dataplane.ReleaseSpinSlot()
		}
	}()
	const total, size = 500, 64
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{BusyPoll: true}, false)
	r, stop := startReceiver(p.b, size, -1)
	sendLockstep(t, p.a, p.b, p.b.LocalAddr(), total, size, 0)
	stop()
	if r.err != nil || r.bad != 0 || len(r.seen) != total {
		t.Fatalf("received %d of %d: err %v, %d corrupted", len(r.seen), total, r.err, r.bad)
	}
}
