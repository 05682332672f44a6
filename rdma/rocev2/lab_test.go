package rocev2_test

import (
	"fmt"
	"testing"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
	"github.com/opennetworks/onetdp/rdma/rocev2"
	"github.com/opennetworks/onetdp/stack"
)

// labPair connects two engines on hosts h0 and h1 of a fresh 2-host lab,
// over the given transport (af_xdp or udp).
func labPair(t *testing.T, transport dataplane.Transport, o pairOptions) (*lab.Lab, *side, *side) {
	t.Helper()
	return labPairWith(t, transport, o, lab.Options{}, false)
}

// labPairWith is labPair in a lab built from lopts (h0 and h1 are the
// pair), over IPv6 when v6 is set.
func labPairWith(t *testing.T, transport dataplane.Transport, o pairOptions, lopts lab.Options, v6 bool) (*lab.Lab, *side, *side) {
	t.Helper()
	o.defaults()
	lopts.IPv6 = lopts.IPv6 || v6
	l := labtest.New(t, lopts)
	var sides [2]*side
	for i := range sides {
		h := &l.Hosts[i]
		var dev *rocev2.Device
		addr := h.Addr.Addr()
		if v6 {
			addr = h.Addr6.Addr()
		}
		err := h.Do(func() error {
			var err error
			dev, err = stack.OpenRDMA(stack.RDMAOptions{Addr: addr, Transport: transport, Engine: o.engine,
				Port: dataplane.OpenOptions{AFXDP: dataplane.AFXDPOptions{BusyPoll: false}}})
			return err
		})
		if err != nil {
			t.Fatalf("%s on %s: %v", transport, h.Name, err)
		}
		if got := dev.Caps().Kind; got != string(transport) {
			t.Fatalf("asked for %s, got %s (%s)", transport, got, dev.Caps().Reason)
		}
		t.Cleanup(func() { dev.Close() })
		sides[i] = newSide(t, dev, o, uint32(0x100+i*0x1000))
	}
	connect(t, sides[0], sides[1], o)
	return l, sides[0], sides[1]
}

func TestLabMixedTraffic(t *testing.T) {
	if raceEnabled {
		// mixedTraffic reads the peer's memory after a completion; the
		// ordering runs through the kernel, where the detector cannot see it.
		t.Skip("cross-host memory checks are ordered through the kernel: invisible to -race")
	}
	for _, tr := range []dataplane.Transport{dataplane.TransportAFXDP, dataplane.TransportUDP} {
		t.Run(string(tr), func(t *testing.T) {
			_, a, b := labPair(t, tr, pairOptions{bufSize: 4 << 20})
			reqs := mixedTraffic(t, a, b, 32<<20, 1<<20, 7)
			st := a.dev.Stats()
			t.Logf("%s: %d requests, %s; tx %d rx %d packets, retransmits %d", tr, reqs, fmt.Sprint(a.dev.Caps().Reason), st.TxPackets.Load(), st.RxPackets.Load(), st.Retransmits.Load())
		})
	}
}

func TestLabIPv6(t *testing.T) {
	if raceEnabled {
		t.Skip("cross-host memory checks are ordered through the kernel: invisible to -race")
	}
	for _, tr := range []dataplane.Transport{dataplane.TransportAFXDP, dataplane.TransportUDP} {
		t.Run(string(tr), func(t *testing.T) {
			_, a, b := labPairWith(t, tr, pairOptions{bufSize: 4 << 20}, lab.Options{}, true)
			if !a.dev.GIDs()[0].Addr().Is6() {
				t.Fatalf("GID %s is not IPv6", a.dev.GIDs()[0])
			}
			mixedTraffic(t, a, b, 4<<20, 256<<10, 11)
		})
	}
}
