package stack_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/collectivetest"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/stack"
	"github.com/opennetworks/onetdp/transport/rdmatransport"
)

// openGroup opens one rocev2 transport per address, each through open
// (which may switch network namespaces), all at once.
func openGroup(t testing.TB, addrs []netip.Addr, kind dataplane.Transport, mtu rdma.MTU, open func(i int, fn func() error) error) []collective.Transport {
	t.Helper()
	return openGroupWith(t, len(addrs), open, func(i int) stack.TransportOptions {
		return stack.TransportOptions{RDMA: stack.RDMAOptions{Addr: addrs[i], Transport: kind}, RoCEv2: rdmatransport.Options{MTU: mtu}}
	})
}

// openGroupWith opens n transports at once with the options opts gives
// (Store, Rank, Size and Prefix are filled in), each through open.
func openGroupWith(t testing.TB, n int, open func(i int, fn func() error) error, opts func(i int) stack.TransportOptions) []collective.Transport {
	t.Helper()
	store := collective.NewMemStore()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return collectivetest.OpenGroup(t, n, func(i int) (tr collective.Transport, err error) {
		err = open(i, func() error {
			o := opts(i)
			o.Store, o.Rank, o.Size, o.Prefix = store, i, n, "stack-test"
			tr, err = stack.OpenTransport(ctx, o)
			return err
		})
		return tr, err
	})
}

func here(_ int, fn func() error) error { return fn() }

// TestOpenTransportLoopback: two ranks over kernel UDP on loopback
// addresses (no root needed).
func TestOpenTransportLoopback(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}
	tr := openGroup(t, addrs, dataplane.TransportUDP, 0, here)
	info := tr[1].(collective.Describer).Info()
	if info.Name != "rocev2/udp" || len(info.Host) != 2 || info.Host[0] != "127.0.0.1" {
		t.Errorf("info %+v", info)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := bytes.Repeat([]byte("onetdp"), 50000)
	got := make([]byte, len(msg))
	r, err := tr[1].Irecv(0, 1, got)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr[0].Isend(1, 1, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(r.Wait(ctx), s.Wait(ctx)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("data differs")
	}
	// Closing the transport closes the engine under it.
	rt := tr[0].(*stack.RoCEv2Transport)
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Engine.AllocPD(); !errors.Is(err, rdma.ErrClosed) {
		t.Errorf("engine after transport close: %v, want closed", err)
	}
}

// TestOpenTransportKinds: tcp, adaptive (rocev2 over kernel UDP below a
// 4 KiB threshold, tcp from it on) and tcp with shared memory for ranks on
// one host, on loopback addresses, each moving one message on each side
// of the threshold.
func TestOpenTransportKinds(t *testing.T) {
	for i, c := range []struct {
		kind stack.TransportKind
		shm  bool
		name string
	}{{stack.TransportTCP, false, "tcp"}, {stack.TransportAdaptive, false, "adaptive(rocev2/udp<4096:tcp)"},
		{stack.TransportTCP, true, "shm+tcp"}} {
		t.Run(c.name, func(t *testing.T) {
			addrs := []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 1, byte(2*i + 1)}), netip.AddrFrom4([4]byte{127, 0, 1, byte(2*i + 2)})}
			shmDir := t.TempDir() // the two ranks share this process's host
			tr := openGroupWith(t, 2, here, func(i int) stack.TransportOptions {
				o := stack.TransportOptions{Kind: c.kind, RDMA: stack.RDMAOptions{Addr: addrs[i], Transport: dataplane.TransportUDP},
					SharedMemory: c.shm}
				o.Adaptive.Threshold = 4096
				o.SHM.Dir = shmDir
				return o
			})
			if info := tr[0].(collective.Describer).Info(); info.Name != c.name {
				t.Errorf("name %q, want %q", info.Name, c.name)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, n := range []int{100, 1 << 20} {
				msg := bytes.Repeat([]byte{byte(n)}, n)
				got := make([]byte, n)
				r, err := tr[1].Irecv(0, 7, got)
				if err != nil {
					t.Fatal(err)
				}
				s, err := tr[0].Isend(1, 7, msg)
				if err != nil {
					t.Fatal(err)
				}
				if err := errors.Join(r.Wait(ctx), s.Wait(ctx)); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("%d B: %v", n, err)
				}
			}
		})
	}
}

func TestOpenTransportErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := stack.OpenTransport(ctx, stack.TransportOptions{Kind: "carrier-pigeon"}); !errors.Is(err, collective.ErrNotSupported) {
		t.Errorf("unknown kind: %v", err)
	}
	// No store: the device opens, the transport refuses, the device closes
	// again (the address is free for the next try).
	o := stack.TransportOptions{Size: 2, RDMA: stack.RDMAOptions{Addr: netip.MustParseAddr("127.0.0.3"), Transport: dataplane.TransportUDP}}
	for range 2 {
		if _, err := stack.OpenTransport(ctx, o); !errors.Is(err, collective.ErrInvalidArgument) {
			t.Fatalf("no store: %v", err)
		}
	}
}

// hostPool hands out lab hosts: an AF_XDP port owns its interface, so
// groups open at the same time need distinct hosts.
type hostPool struct {
	mu   sync.Mutex
	l    *lab.Lab
	busy []bool
	// busyPoll forces busy-polling on the groups' AF_XDP ports
	// (AFXDPOptions.BusyPoll): every waiter then polls (rdma.Poller).
	busyPoll bool
}

// labGroup opens n ranks on n free hosts of the pool over AF_XDP; the
// hosts return to the pool after the transports closed (at cleanup).
func (p *hostPool) labGroup(t testing.TB, n int, mtu rdma.MTU) []collective.Transport {
	t.Helper()
	p.mu.Lock()
	var hosts []*lab.Host
	var idx []int
	for i := range p.l.Hosts {
		if len(hosts) < n && !p.busy[i] {
			p.busy[i] = true
			hosts, idx = append(hosts, &p.l.Hosts[i]), append(idx, i)
		}
	}
	p.mu.Unlock()
	t.Cleanup(func() {
		p.mu.Lock()
		for _, i := range idx {
			p.busy[i] = false
		}
		p.mu.Unlock()
	})
	if len(hosts) < n {
		t.Fatalf("group of %d: only %d lab hosts free", n, len(hosts))
	}
	return openGroupWith(t, n, func(i int, fn func() error) error { return hosts[i].Do(fn) }, func(i int) stack.TransportOptions {
		o := stack.TransportOptions{RDMA: stack.RDMAOptions{Addr: hosts[i].Addr.Addr(), Transport: dataplane.TransportAFXDP},
			RoCEv2: rdmatransport.Options{MTU: mtu}}
		o.RDMA.Port.AFXDP.BusyPoll = p.busyPoll
		return o
	})
}

func newHostPool(t testing.TB, hosts int) *hostPool {
	l := labtest.New(t, lab.Options{Hosts: hosts, MTU: 3000})
	return &hostPool{l: l, busy: make([]bool, hosts)}
}

// TestTransportConformanceLab runs the Transport suite across lab hosts
// over AF_XDP, path MTU 2048.
func TestTransportConformanceLab(t *testing.T) {
	testutil.RequireRoot(t)
	// RankSize holds groups of 1, 2 and 3 open at once: six hosts.
	pool := newHostPool(t, 6)
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		tr := pool.labGroup(t, n, rdma.MTU2048)
		if name := tr[0].(collective.Describer).Info().Name; name != "rocev2/af_xdp" {
			t.Errorf("transport %s, want rocev2/af_xdp", name)
		}
		return tr
	})
}

// TestTransportConformancePollingLab runs the suite with busy-polling
// forced on every port, so that every waiter runs the engine's receive
// path and the completions itself (request.Wait polling through
// rdma.Poller) while the engines' own goroutines stand aside: the run to
// completion path, which the default (several ports in one process: no
// spinning) never takes.
func TestTransportConformancePollingLab(t *testing.T) {
	testutil.RequireRoot(t)
	pool := newHostPool(t, 6)
	pool.busyPoll = true
	collectivetest.TestTransport(t, func(t *testing.T, n int) []collective.Transport {
		tr := pool.labGroup(t, n, rdma.MTU2048)
		for _, x := range tr {
			if reason := x.(*stack.RoCEv2Transport).Engine.Caps().Reason; !strings.Contains(reason, ", busy-poll") {
				t.Fatalf("port %q does not busy-poll", reason)
			}
		}
		return tr
	})
}

// TestOpenTransportBusyPollLab: the AF_XDP port under a rocev2 transport
// busy-polls by default and parks at once with NoBusyPoll; both carry
// messages.
func TestOpenTransportBusyPollLab(t *testing.T) {
	testutil.RequireRoot(t)
	l := labtest.New(t, lab.Options{Hosts: 2, MTU: 3000})
	for _, noBusy := range []bool{false, true} {
		tr := openGroupWith(t, 2, func(i int, fn func() error) error { return l.Hosts[i].Do(fn) }, func(i int) stack.TransportOptions {
			return stack.TransportOptions{RDMA: stack.RDMAOptions{Addr: l.Hosts[i].Addr.Addr(), Transport: dataplane.TransportAFXDP},
				NoBusyPoll: noBusy}
		})
		reason := tr[0].(*stack.RoCEv2Transport).Engine.Caps().Reason
		if strings.Contains(reason, "busy-poll") == noBusy {
			t.Errorf("NoBusyPoll %v: port %q", noBusy, reason)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got := make([]byte, 64)
		r, err := tr[1].Irecv(0, 1, got)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tr[0].Isend(1, 1, bytes.Repeat([]byte{7}, 64))
		if err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(r.Wait(ctx), s.Wait(ctx)); err != nil || got[63] != 7 {
			t.Fatalf("NoBusyPoll %v: %v", noBusy, err)
		}
		cancel()
		for _, x := range tr {
			x.Close() // the hosts' interfaces are free for the next round
		}
	}
}

// BenchmarkTransportLab measures Isend/Irecv between two lab hosts over
// AF_XDP: 64 B ping-pong latency (one way) and 4 MiB streaming bandwidth.
func BenchmarkTransportLab(b *testing.B) {
	testutil.RequireRoot(b)
	tr := newHostPool(b, 2).labGroup(b, 2, rdma.MTU2048)
	b.Run("latency/64B", func(b *testing.B) { collectivetest.BenchPingPong(b, tr, 64) })
	b.Run("latency/4KiB", func(b *testing.B) { collectivetest.BenchPingPong(b, tr, 4096) })
	b.Run("bandwidth/64KiB", func(b *testing.B) { collectivetest.BenchStream(b, tr, 64<<10) })
	b.Run("bandwidth/4MiB", func(b *testing.B) { collectivetest.BenchStream(b, tr, 4<<20) })
}
