package lab_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

func TestBottleneckPair(t *testing.T) {
	t.Parallel()
	b := &lab.Bottleneck{Host: 1, RateBps: 100e6, BurstBytes: 64 << 10, LimitBytes: 1 << 20}
	l := labtest.New(t, lab.Options{Bottleneck: b})
	// Into h1 means h0's egress.
	checkTBF(t, nsHandle(t, lab.HostNetns(l.Name, 0)), "eth0", b)
	if q := rootQdisc(t, nsHandle(t, lab.HostNetns(l.Name, 1)), "eth0"); q != nil {
		t.Errorf("h1 eth0 has root qdisc %s, want none", q.Type())
	}
	checkStatusBottleneck(t, l, b)
}

func TestBottleneckSwitched(t *testing.T) {
	t.Parallel()
	b := &lab.Bottleneck{Host: 2, RateBps: 1e9}
	l := labtest.New(t, lab.Options{Hosts: 3, Bottleneck: b})
	sw := nsHandle(t, lab.SwitchNetns(l.Name))
	want := *b
	want.BurstBytes = 125000            // 1 ms at 1 gbit/s > 64 KiB
	want.LimitBytes = 125e6/20 + 125000 // 50 ms plus the burst
	checkTBF(t, sw, "p2", &want)
	for _, p := range []string{"p0", "p1"} {
		if q := rootQdisc(t, sw, p); q != nil {
			t.Errorf("%s has root qdisc %s, want none", p, q.Type())
		}
	}
	checkStatusBottleneck(t, l, &want)
	checkAllPairs(t, l, false)
}

func rootQdisc(t *testing.T, h *netlink.Handle, ifname string) netlink.Qdisc {
	t.Helper()
	link, err := h.LinkByName(ifname)
	if err != nil {
		t.Fatalf("%s: %v", ifname, err)
	}
	qs, err := h.QdiscList(link)
	if err != nil {
		t.Fatalf("qdiscs of %s: %v", ifname, err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT && q.Type() != "noqueue" {
			return q
		}
	}
	return nil
}

func checkTBF(t *testing.T, h *netlink.Handle, ifname string, b *lab.Bottleneck) {
	t.Helper()
	q := rootQdisc(t, h, ifname)
	tbf, ok := q.(*netlink.Tbf)
	if !ok {
		t.Fatalf("%s root qdisc %v, want tbf", ifname, q)
	}
	if tbf.Rate != b.RateBps/8 || tbf.Limit != b.LimitBytes {
		t.Errorf("%s tbf rate %d B/s limit %d, want %d %d", ifname, tbf.Rate, tbf.Limit, b.RateBps/8, b.LimitBytes)
	}
	// The bucket is kept in 64 ns ticks: 1 ms is 15625 of them.
	if wantTicks := uint32(float64(b.BurstBytes) / float64(b.RateBps/8) * 1e9 / 64); tbf.Buffer != wantTicks {
		t.Errorf("%s tbf buffer %d ticks, want %d", ifname, tbf.Buffer, wantTicks)
	}
}

func checkStatusBottleneck(t *testing.T, l *lab.Lab, b *lab.Bottleneck) {
	t.Helper()
	st, err := lab.Status(l.Name)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	g := st.Bottleneck
	if g == nil || *g != *b {
		t.Errorf("status bottleneck %+v, want %+v", g, b)
	}
}

// deleteNetns removes a namespace behind the package's back, as a crash or a
// user would leave it.
func deleteNetns(t *testing.T, name string) {
	t.Helper()
	if err := netns.DeleteNamed(name); err != nil {
		t.Fatalf("delete %s: %v", name, err)
	}
}

func TestRepairMissingHost(t *testing.T) {
	t.Parallel()
	opts := lab.Options{Name: testutil.UniqueName("t"), Hosts: 3, Subnet: labtest.RandomSubnet()}
	labtest.New(t, opts)
	deleteNetns(t, lab.HostNetns(opts.Name, 1))
	if _, err := lab.Status(opts.Name); !errors.Is(err, lab.ErrIncomplete) {
		t.Fatalf("status with h1 missing: %v, want ErrIncomplete", err)
	}
	l, err := lab.Up(opts)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	checkAllPairs(t, l, false)
}

func TestRepairOnlyFirstNamespace(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t)
	name := testutil.UniqueName("t")
	t.Cleanup(func() {
		if err := lab.Down(name); err != nil {
			t.Error(err)
		}
	})
	// Only h0 exists, as if Up had crashed right after creating it.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.NewNamed(lab.HostNetns(name, 0))
		if err == nil {
			ns.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create h0 alone: %v", err)
	}
	if _, err := lab.Status(name); !errors.Is(err, lab.ErrIncomplete) {
		t.Fatalf("status with only h0: %v, want ErrIncomplete", err)
	}
	l, err := lab.Up(lab.Options{Name: name, Subnet: labtest.RandomSubnet()})
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	checkAllPairs(t, l, false)
}
