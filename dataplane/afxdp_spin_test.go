package dataplane_test

import (
	"runtime"
	"testing"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
)

// TestSpinSlots: only a process with exactly one busy-polling port spins,
// one Recv at a time, whatever GOMAXPROCS is; a slot given back can be
// taken again; ONET_BUSY_POLL=off forbids spinning. (No port of this test
// binary is open here: the tests of this package do not run in parallel.)
func TestSpinSlots(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		dataplane.NoteSpinEnv()
		for _, c := range []struct {
			ports int32
			want  bool
		}{{0, false}, {1, true}, {2, false}, {5, false}} {
			dataplane.AddBusyPorts(c.ports)
			got := dataplane.TakeSpinSlot()
			if got {
				if dataplane.TakeSpinSlot() {
					t.Errorf("%d ports: a second spin slot", c.ports)
					dataplane.ReleaseSpinSlot()
				}
				dataplane.ReleaseSpinSlot()
				if !dataplane.TakeSpinSlot() {
					t.Errorf("%d ports: the slot given back could not be taken again", c.ports)
				} else {
					dataplane.ReleaseSpinSlot()
				}
			}
			dataplane.AddBusyPorts(-c.ports)
			if got != c.want {
				t.Errorf("GOMAXPROCS %d, %d busy-polling ports: spin %v, want %v", procs, c.ports, got, c.want)
			}
		}
	}
	defer dataplane.NoteSpinEnv()
	dataplane.AddBusyPorts(1)
	defer dataplane.AddBusyPorts(-1)
	for _, c := range []struct {
		env  string
		want bool
	}{{"off", false}, {"always", true}, {"auto", true}, {"", true}} {
		t.Setenv(dataplane.EnvBusyPoll, c.env)
		dataplane.NoteSpinEnv()
		got := dataplane.TakeSpinSlot()
		if got {
			dataplane.ReleaseSpinSlot()
		}
		if got != c.want {
			t.Errorf("%s=%q: spin %v, want %v", dataplane.EnvBusyPoll, c.env, got, c.want)
		}
	}
}

// TestAFXDPBusyPollWithoutSpinSlot: BusyPollAuto ports that may not spin
// (two of them in this process) park in the netpoller instead, and still
// receive everything.
func TestAFXDPBusyPollWithoutSpinSlot(t *testing.T) {
	const total, size = 500, 64
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{BusyPollAuto: true}, false)
	if dataplane.TakeSpinSlot() {
		dataplane.ReleaseSpinSlot()
		t.Fatal("two busy-polling ports open, yet a spin slot")
	}
	r, stop := startReceiver(p.b, size, -1)
	sendLockstep(t, p.a, p.b, p.b.LocalAddr(), total, size, 0)
	stop()
	if r.err != nil || r.bad != 0 || len(r.seen) != total {
		t.Fatalf("received %d of %d: err %v, %d corrupted", len(r.seen), total, r.err, r.bad)
	}
}
