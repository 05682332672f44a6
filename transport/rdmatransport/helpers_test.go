package rdmatransport_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma/rocev2"
	"github.com/opennetworks/onetdp/transport/rdmatransport"
)

// fakeGroup connects n ranks, each on its own engine, over an in-memory
// network. mod, if set, adjusts each rank's options.
func fakeGroup(t testing.TB, n int, mod func(*rdmatransport.Options)) []*rdmatransport.Transport {
	t.Helper()
	return fakeGroupPorts(t, n, false, mod)
}

// fakeGroupPorts is fakeGroup, on ports that let waiters poll
// (porttest.PollPort) when polled is set.
func fakeGroupPorts(t testing.TB, n int, polled bool, mod func(*rdmatransport.Options)) []*rdmatransport.Transport {
	t.Helper()
	net := porttest.NewNetwork(porttest.NetworkOptions{MTU: 4200, QueueLen: 8192})
	store := collective.NewMemStore()
	devs := make([]*rocev2.Device, n)
	for i := range n {
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), rocev2.UDPPort)
		var port dataplane.Port
		var err error
		if polled {
			port, err = net.NewPollPort(addr)
		} else {
			port, err = net.NewPort(addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		d, err := rocev2.Open(rocev2.Options{Port: port})
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = d
	}
	t.Cleanup(func() { // after the transports closed
		for _, d := range devs {
			d.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return collectivetest.OpenGroup(t, n, func(i int) (*rdmatransport.Transport, error) {
		o := rdmatransport.Options{Device: devs[i], Store: store, Rank: i, Size: n, Prefix: "test"}
		if mod != nil {
			mod(&o)
		}
		return rdmatransport.New(ctx, o)
	})
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*131+i>>9) ^ seed
	}
	return b
}

func wait(t testing.TB, what string, r collective.Request) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return r.Wait(ctx)
}

func mustWait(t testing.TB, what string, r collective.Request) {
	t.Helper()
	if err := wait(t, what, r); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustReq(t testing.TB) func(collective.Request, error) collective.Request {
	return func(r collective.Request, err error) collective.Request {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func name(format string, a ...any) string { return fmt.Sprintf(format, a...) }
