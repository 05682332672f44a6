package stack_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/collective/rendezvous"
	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
	"github.com/opennetworks/onetdp/stack"
)

// envOf is a Lookup over a fixed environment.
func envOf(kv map[string]string) rendezvous.Lookup {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

// freePort is a TCP port on 127.0.0.1 free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// openAll opens n ranks of one job in this process, rank r with opts(r).
func openAll(t *testing.T, n int, opts func(r int) stack.CommOptions) []*stack.Comm {
	t.Helper()
	cs := make([]*stack.Comm, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Go(func() {
			cs[r], errs[r] = stack.OpenCommunicator(context.Background(), opts(r))
		})
	}
	wg.Wait()
	t.Cleanup(func() { closeAll(cs) })
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return cs
}

// closeAll closes every communicator at once (Close is collective).
func closeAll(cs []*stack.Comm) []error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for r, c := range cs {
		if c != nil {
			wg.Go(func() { errs[r] = c.Close() })
		}
	}
	wg.Wait()
	return errs
}

// allreduceRanks runs a float64 sum of (rank+1) on every rank and checks
// the exact result.
func allreduceRanks(t *testing.T, cs []*stack.Comm) {
	t.Helper()
	n := len(cs)
	var wg sync.WaitGroup
	for r, c := range cs {
		wg.Go(func() {
			b := make([]byte, 8*5)
			for i := range 5 {
				binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(float64(r+1+i)))
			}
			if err := c.AllReduce(context.Background(), nil, b, collective.Float64, collective.Sum); err != nil {
				t.Errorf("rank %d: %v", r, err)
				return
			}
			for i := range 5 {
				got := math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
				if want := float64(n*(n+1)/2 + n*i); got != want {
					t.Errorf("rank %d [%d] = %v, want %v", r, i, got, want)
				}
			}
		})
	}
	wg.Wait()
}

// TestOpenCommunicatorSingleRank: a one-rank job with no launcher and no
// master gets an in-memory store and works.
func TestOpenCommunicatorSingleRank(t *testing.T) {
	c, err := stack.OpenCommunicator(context.Background(), stack.CommOptions{Rank: 0, Size: 1, Lookup: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if c.Rank() != 0 || c.Size() != 1 || c.Kind != stack.TransportTCP || c.Launch.Source != "explicit" || c.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("comm %+v", c.Launch)
	}
	allreduceRanks(t, []*stack.Comm{c})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := c.Barrier(context.Background()); !errors.Is(err, collective.ErrClosed) {
		t.Errorf("barrier after close: %v", err)
	}
	// A single rank serves no store, so a launcher's taken MASTER_PORT
	// does not matter.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err = stack.OpenCommunicator(context.Background(), stack.CommOptions{Rank: -1, Size: -1, Lookup: envOf(map[string]string{
		"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)})})
	if err != nil {
		t.Fatalf("single rank with a taken MASTER_PORT: %v", err)
	}
	allreduceRanks(t, []*stack.Comm{c})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenCommunicatorTorchrunEnv: three ranks started as torchrun would
// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) over tcp on loopback; a
// second communicator on the same store gets its own key prefix; after
// Close rank 0's store port is free again.
func TestOpenCommunicatorTorchrunEnv(t *testing.T) {
	port := freePort(t)
	const n = 3
	env := func(r int) map[string]string {
		return map[string]string{"RANK": strconv.Itoa(r), "WORLD_SIZE": strconv.Itoa(n), "LOCAL_RANK": strconv.Itoa(r),
			"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": strconv.Itoa(port)}
	}
	cs := openAll(t, n, func(r int) stack.CommOptions {
		return stack.CommOptions{Rank: -1, Size: -1, Lookup: envOf(env(r)), ConnectTimeout: 20 * time.Second}
	})
	for r, c := range cs {
		if c.Rank() != r || c.Size() != n || c.Launch.Source != "torchrun" || c.Launch.MasterPort != port ||
			c.TransportName != "tcp" || c.Addr != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("rank %d: launch %+v transport %q addr %v", r, c.Launch, c.TransportName, c.Addr)
		}
	}
	second := openAll(t, n, func(r int) stack.CommOptions {
		return stack.CommOptions{Rank: -1, Size: -1, Lookup: envOf(env(r)), Transport: stack.TransportTCP}
	})
	allreduceRanks(t, cs)
	allreduceRanks(t, second)
	if err := errors.Join(closeAll(second)...); err != nil {
		t.Fatal(err)
	}
	allreduceRanks(t, cs) // the store outlives the second communicator
	if err := errors.Join(closeAll(cs)...); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("store port still taken after close: %v", err)
	}
	ln.Close()
}

// TestCommCloseBounded: Close returns within CloseTimeout when a peer
// never closes, and at once when the peer aborted.
func TestCommCloseBounded(t *testing.T) {
	port := freePort(t)
	cs := openAll(t, 2, func(r int) stack.CommOptions {
		return stack.CommOptions{Rank: r, Size: 2, MasterAddr: "127.0.0.1", MasterPort: port, Lookup: envOf(nil),
			CloseTimeout: 300 * time.Millisecond}
	})
	start := time.Now()
	if err := cs[0].Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 250*time.Millisecond || took > 5*time.Second {
		t.Errorf("close with an idle peer took %v, want about the 300 ms close timeout", took)
	}
	start = time.Now()
	cs[1].Close() // its barrier fails at once: rank 0 is gone
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("close after the peer left took %v", took)
	}

	port = freePort(t)
	cs = openAll(t, 2, func(r int) stack.CommOptions {
		return stack.CommOptions{Rank: r, Size: 2, MasterAddr: "127.0.0.1", MasterPort: port, Lookup: envOf(nil)}
	})
	cs[1].Abort(errors.New("test"))
	start = time.Now()
	err := cs[0].Barrier(context.Background())
	if !errors.Is(err, collective.ErrAborted) {
		t.Errorf("barrier after the peer aborted: %v", err)
	}
	cs[0].Close()
	cs[1].Close()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("abort and close took %v", took)
	}
}

func TestOpenCommunicatorErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		o    stack.CommOptions
		want error
	}{
		{"rank >= size", stack.CommOptions{Rank: 2, Size: 2, Lookup: envOf(nil)}, collective.ErrInvalidArgument},
		{"no launcher", stack.CommOptions{Rank: -1, Size: -1, Lookup: envOf(nil)}, rendezvous.ErrNoLauncher},
		{"no master", stack.CommOptions{Rank: 0, Size: 2, Lookup: envOf(nil)}, rendezvous.ErrBadLaunch},
		{"env transport", stack.CommOptions{Rank: 0, Size: 1, Lookup: envOf(map[string]string{"ONET_TRANSPORT": "warp"})}, collective.ErrNotSupported},
		{"bad port", stack.CommOptions{Rank: 0, Size: 1, MasterPort: 70000, Lookup: envOf(nil)}, collective.ErrInvalidArgument},
	} {
		_, err := stack.OpenCommunicator(ctx, c.o)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Rank 0 cannot serve a port that something else holds: the error
	// says so and how to pick another.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = stack.OpenCommunicator(ctx, stack.CommOptions{Rank: 0, Size: 2, MasterAddr: "127.0.0.1",
		MasterPort: ln.Addr().(*net.TCPAddr).Port, Lookup: envOf(nil)})
	if err == nil || !strings.Contains(err.Error(), "torch's own TCPStore") {
		t.Errorf("master port taken: %v", err)
	}
	// A rank whose master never answers fails within ConnectTimeout.
	start := time.Now()
	_, err = stack.OpenCommunicator(ctx, stack.CommOptions{Rank: 1, Size: 2, MasterAddr: "127.0.0.1", MasterPort: freePort(t),
		Lookup: envOf(nil), ConnectTimeout: 500 * time.Millisecond})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("unreachable master: %v after %v", err, time.Since(start))
	}
}

// TestRendezvousTimeoutEverywhere: a rank that never arrives makes the
// rendezvous time out on every rank that did, naming the absent rank, even
// where rank 0 gives up first (here with a shorter timeout than the
// others): its store server tells the ranks still waiting on it why,
// rather than leaving them a broken connection, and they learn it at once.
func TestRendezvousTimeoutEverywhere(t *testing.T) {
	const n = 4 // rank 3 never comes
	port := freePort(t)
	errs := make([]error, n-1)
	took := make([]time.Duration, n-1)
	var wg sync.WaitGroup
	for r := range n - 1 {
		wg.Go(func() {
			timeout := 20 * time.Second
			if r == 0 {
				timeout = 500 * time.Millisecond
			}
			start := time.Now()
			c, err := stack.OpenCommunicator(context.Background(), stack.CommOptions{Rank: r, Size: n,
				MasterAddr: "127.0.0.1", MasterPort: port, Lookup: envOf(nil), ConnectTimeout: timeout})
			took[r], errs[r] = time.Since(start), err
			if c != nil {
				c.Close()
			}
		})
	}
	wg.Wait()
	for r, err := range errs {
		if !errors.Is(err, collective.ErrTimeout) || !strings.Contains(err.Error(), "rank 3") {
			t.Errorf("rank %d: %v, want a timeout naming rank 3", r, err)
		}
		if took[r] > 10*time.Second {
			t.Errorf("rank %d failed after %v: it did not hear from rank 0", r, took[r])
		}
	}
	t.Logf("rank 1: %v", errs[1])
}

// TestOpenCommunicatorExplicitWins: explicit rank, size and master win
// over the launcher's variables; the rest still comes from them.
func TestOpenCommunicatorExplicitWins(t *testing.T) {
	port := freePort(t)
	env := map[string]string{"RANK": "5", "WORLD_SIZE": "9", "MASTER_ADDR": "198.18.99.99", "MASTER_PORT": strconv.Itoa(port),
		"ONET_TRANSPORT": "tcp"}
	cs := openAll(t, 2, func(r int) stack.CommOptions {
		return stack.CommOptions{Rank: r, Size: 2, MasterAddr: "127.0.0.1", Lookup: envOf(env)}
	})
	if l := cs[1].Launch; l.Rank != 1 || l.Size != 2 || l.MasterAddr != "127.0.0.1" || l.MasterPort != port || l.Source != "explicit" {
		t.Errorf("launch %+v", l)
	}
	allreduceRanks(t, cs)
}

func TestLocalAddrFor(t *testing.T) {
	ctx := context.Background()
	for host, want := range map[string]string{"127.0.0.1": "127.0.0.1", "127.0.0.5": "127.0.0.5", "::1": "::1"} {
		got, err := stack.LocalAddrFor(ctx, host)
		if err != nil || got != netip.MustParseAddr(want) {
			t.Errorf("%s: %v, %v; want %s", host, got, err, want)
		}
	}
	if got, err := stack.LocalAddrFor(ctx, "localhost"); err != nil || !got.IsLoopback() {
		t.Errorf("localhost: %v, %v", got, err)
	}
	if _, err := stack.LocalAddrFor(ctx, "no-such-host.invalid"); !errors.Is(err, collective.ErrInvalidArgument) {
		t.Errorf("unresolvable: %v", err)
	}
}

// TestOpenCommunicatorLab: two lab hosts, one rank each; the data address
// defaults to each host's own address (the route toward the master), over
// tcp and rocev2 (kernel UDP port).
func TestOpenCommunicatorLab(t *testing.T) {
	testutil.RequireRoot(t)
	l := labtest.New(t, lab.Options{Hosts: 2})
	master := l.Hosts[0].Addr.Addr().String()
	// This machine's own name resolving to loopback (Debian's /etc/hosts)
	// gives the host's interface address, which peers can reach.
	if name, err := os.Hostname(); err == nil {
		if ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", name); err == nil && len(ips) > 0 && ips[0].IsLoopback() {
			l.Hosts[1].Do(func() error {
				got, err := stack.LocalAddrFor(context.Background(), name)
				if err != nil || got != l.Hosts[1].Addr.Addr() {
					t.Errorf("local address toward %q (loopback %v) in h1: %v, %v; want %v", name, ips[0], got, err, l.Hosts[1].Addr.Addr())
				}
				return nil
			})
		}
	}
	for i, kind := range []stack.TransportKind{stack.TransportTCP, stack.TransportRoCEv2} {
		t.Run(string(kind), func(t *testing.T) {
			port := 29400 + i
			open := func() []*stack.Comm {
				cs := make([]*stack.Comm, 2)
				errs := make([]error, 2)
				var wg sync.WaitGroup
				for r := range 2 {
					wg.Go(func() {
						errs[r] = l.Hosts[r].Do(func() error {
							var err error
							cs[r], err = stack.OpenCommunicator(context.Background(), stack.CommOptions{Rank: r, Size: 2,
								MasterAddr: master, MasterPort: port, Transport: kind, PortTransport: "udp", Lookup: envOf(nil),
								ConnectTimeout: 30 * time.Second})
							return err
						})
					})
				}
				wg.Wait()
				t.Cleanup(func() { closeAll(cs) })
				if err := errors.Join(errs...); err != nil {
					t.Fatal(err)
				}
				return cs
			}
			cs := open()
			// A second communicator on the same hosts shares the store and,
			// for rocev2, the engine on the address (one UDP port 4791).
			second := open()
			allreduceRanks(t, second)
			allreduceRanks(t, cs)
			if err := errors.Join(closeAll(second)...); err != nil {
				t.Fatal(err)
			}
			for r, c := range cs {
				if c.Addr != l.Hosts[r].Addr.Addr() {
					t.Errorf("rank %d: data address %v, want the host's %v", r, c.Addr, l.Hosts[r].Addr.Addr())
				}
			}
			if want := map[stack.TransportKind]string{stack.TransportTCP: "tcp", stack.TransportRoCEv2: "rocev2/udp"}[kind]; cs[0].TransportName != want {
				t.Errorf("transport %q, want %q", cs[0].TransportName, want)
			}
			allreduceRanks(t, cs)
			if err := errors.Join(closeAll(cs)...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLaunchedProcs: a launched rank runs one Go thread unless GOMAXPROCS
// says otherwise.
func TestLaunchedProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	stack.ResetLaunchedProcs()
	want := 1
	if os.Getenv("GOMAXPROCS") != "" {
		want = runtime.GOMAXPROCS(0)
	}
	if got := stack.LaunchedProcs(); got != want {
		t.Errorf("GOMAXPROCS %d, want %d (environment GOMAXPROCS=%q)", got, want, os.Getenv("GOMAXPROCS"))
	}
}
