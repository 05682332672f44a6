package bpf

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/internal/testutil"
)

// enterNewNetns locks the calling goroutine to its OS thread and moves the
// thread into a new named network namespace. The returned function moves it
// back (and unlocks it only if that worked); call it with defer. The
// namespace is deleted in t.Cleanup.
func enterNewNetns(t *testing.T) (restore func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	name := testutil.UniqueName("obpf")
	ns, err := netns.NewNamed(name)
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	// No IPv6 on new links: no router solicitations or MLD reports on the
	// veth while we count. /proc/sys/net is that of the opening thread.
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0); err != nil {
		t.Logf("disable ipv6 in %s: %v", name, err)
	}
	return func() {
		defer orig.Close()
		if err := netns.Set(orig); err != nil {
			t.Errorf("return to original netns: %v (thread left locked, it exits with the goroutine)", err)
			return
		}
		runtime.UnlockOSThread()
	}
}

// addVeth creates an up veth pair in the current netns and returns both.
func addVeth(t *testing.T) (netlink.Link, netlink.Link) {
	t.Helper()
	a, b := testutil.UniqueName("obva"), testutil.UniqueName("obvb")
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, MTU: 1500}, PeerName: b}); err != nil {
		t.Fatalf("add veth %s/%s: %v", a, b, err)
	}
	var links [2]netlink.Link
	for i, n := range []string{a, b} {
		l, err := netlink.LinkByName(n)
		if err != nil {
			t.Fatalf("link %s: %v", n, err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
		links[i] = l
	}
	return links[0], links[1]
}

func xdpState(t *testing.T, ifindex int) *netlink.LinkXdp {
	t.Helper()
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		t.Fatalf("link %d: %v", ifindex, err)
	}
	return l.Attrs().Xdp
}

// sendRaw writes frames out of ifindex through an AF_PACKET socket.
func sendRaw(t *testing.T, ifindex int, frames ...[]byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	defer unix.Close(fd)
	for _, f := range frames {
		if err := unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
			t.Fatalf("send %d bytes on ifindex %d: %v", len(f), ifindex, err)
		}
	}
}

// waitCounters polls until cond holds (at most 3 s) and returns the last read.
func waitCounters(t *testing.T, d *Dispatcher, cond func([NumClasses]ClassCounters) bool) [NumClasses]ClassCounters {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c := mustCounters(t, d)
		if cond(c) || time.Now().After(deadline) {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newXSK opens an AF_XDP socket in copy mode bound to queue 0 of ifindex,
// with a registered UMEM and rings sized but not mapped: enough for the
// XSKMAP; frames redirected to it are dropped for want of fill buffers.
func newXSK(t *testing.T, ifindex int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatalf("xdp socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	const frames, frameSize = 64, 4096
	mem, err := unix.Mmap(-1, 0, frames*frameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap umem: %v", err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&mem[0]))), Len: uint64(len(mem)), Size: frameSize}
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG,
		uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0); e != 0 {
		t.Fatalf("register umem: %v", e)
	}
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, opt, frames); err != nil {
			t.Fatalf("size ring %d: %v", opt, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrXDP{Flags: unix.XDP_COPY, Ifindex: uint32(ifindex), QueueID: 0}); err != nil {
		t.Fatalf("bind xdp socket to ifindex %d queue 0: %v", ifindex, err)
	}
	return fd
}

func TestAttachVethPinned(t *testing.T) {
	testutil.RequireBPFFS(t)
	pinDir := filepath.Join("/sys/fs/bpf", testutil.UniqueName("onetdp-test-"))
	t.Cleanup(func() {
		if err := Unpin(pinDir); err != nil {
			t.Errorf("unpin: %v", err)
		}
	})
	defer enterNewNetns(t)()
	veth, peer := addVeth(t)
	ifindex := veth.Attrs().Index

	d, err := Attach(ifindex, DispatcherOptions{OnetPort: testOnetPort, Mode: AttachNative, PinDir: pinDir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if mode, reason := d.Mode(); mode != "native" || reason != "" {
		t.Errorf("Mode() = %q, %q; want native", mode, reason)
	}
	info, err := d.Program().Info()
	if err != nil {
		t.Fatal(err)
	}
	progID, _ := info.ID()
	if x := xdpState(t, ifindex); x == nil || !x.Attached || x.ProgId != uint32(progID) || x.AttachMode != 1 /* XDP_ATTACHED_DRV */ {
		t.Fatalf("xdp state after Attach = %+v, want program %d attached in driver mode", x, progID)
	}

	// Real frames through the veth: no socket yet, so RoCEv2 falls back.
	roce := roceFrame(0x77, 64)
	sendRaw(t, peer.Attrs().Index, roce, roce, roce)
	c := waitCounters(t, d, func(c [NumClasses]ClassCounters) bool { return c[ClassRoCEv2].Packets >= 3 })
	n := uint64(len(roce))
	if want := (ClassCounters{Packets: 3, Bytes: 3 * n, RedirectFail: 3}); c[ClassRoCEv2] != want {
		t.Fatalf("rocev2 counters after 3 frames = %+v, want %+v", c[ClassRoCEv2], want)
	}

	// With an AF_XDP socket on queue 0 the program redirects.
	fd := newXSK(t, ifindex)
	if err := d.RegisterSocket(0, fd); err != nil {
		t.Fatal(err)
	}
	if act := mustRun(t, d, roce); act != XDPRedirect {
		t.Fatalf("test run with a socket on queue 0: action %d, want XDP_REDIRECT", act)
	}
	sendRaw(t, peer.Attrs().Index, roce, roce)
	c = waitCounters(t, d, func(c [NumClasses]ClassCounters) bool { return c[ClassRoCEv2].Packets >= 6 })
	if want := (ClassCounters{Packets: 6, Bytes: 6 * n, RedirectFail: 3}); c[ClassRoCEv2] != want {
		t.Fatalf("rocev2 counters with a socket = %+v, want %+v", c[ClassRoCEv2], want)
	}
	if err := d.UnregisterSocket(0); err != nil {
		t.Fatal(err)
	}
	if act := mustRun(t, d, roce); act != XDPPass {
		t.Fatalf("test run after unregister: action %d, want XDP_PASS", act)
	}
	before := mustCounters(t, d)

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if x := xdpState(t, ifindex); x != nil && x.Attached {
		t.Fatalf("xdp still attached after Close: %+v", x)
	}
	for _, name := range mapNames {
		if _, err := os.Stat(filepath.Join(pinDir, name)); err != nil {
			t.Errorf("pinned map %s after Close: %v", name, err)
		}
	}

	// A second Attach with the same pin dir sees the same counters.
	d2, err := Attach(ifindex, DispatcherOptions{Mode: AttachAuto, PinDir: pinDir})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if mode, _ := d2.Mode(); mode != "native" {
		t.Errorf("auto mode on veth = %q, want native", mode)
	}
	assertCounters(t, mustCounters(t, d2), before)
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	if x := xdpState(t, ifindex); x != nil && x.Attached {
		t.Fatalf("xdp still attached after second Close: %+v", x)
	}
	if err := Unpin(pinDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pinDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin dir after Unpin: %v", err)
	}
}

func TestAttachGenericFallback(t *testing.T) {
	testutil.RequireRoot(t)
	defer enterNewNetns(t)()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	ifindex := lo.Attrs().Index

	if d, err := Attach(ifindex, DispatcherOptions{Mode: AttachNative}); err == nil {
		d.Close()
		t.Fatal("native attach to lo succeeded; lo has no driver XDP")
	}
	d, err := Attach(ifindex, DispatcherOptions{Mode: AttachAuto})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mode, reason := d.Mode()
	if mode != "generic" || !strings.Contains(reason, "native attach failed") {
		t.Errorf("Mode() = %q, %q; want generic with the native failure", mode, reason)
	}
	if x := xdpState(t, ifindex); x == nil || !x.Attached || x.AttachMode != 2 /* XDP_ATTACHED_SKB */ {
		t.Fatalf("xdp state = %+v, want attached in generic mode", x)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if x := xdpState(t, ifindex); x != nil && x.Attached {
		t.Fatalf("xdp still attached after Close: %+v", x)
	}

	d, err = Attach(ifindex, DispatcherOptions{Mode: AttachGeneric})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if mode, _ := d.Mode(); mode != "generic" {
		t.Errorf("generic Mode() = %q", mode)
	}
}
