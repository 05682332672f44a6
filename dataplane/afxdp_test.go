package dataplane_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
)

const testPort = 4792

// xdpPair is a 2-host lab with an AF_XDP port on each host.
type xdpPair struct {
	lab  *lab.Lab
	a, b *dataplane.AFXDPPort
}

func newXDPPairTB(tb testing.TB, xo dataplane.AFXDPOptions) *xdpPair {
	return newXDPPair(tb, lab.Options{}, xo, false)
}

func newXDPPair(t testing.TB, opts lab.Options, xo dataplane.AFXDPOptions, v6 bool) *xdpPair {
	t.Helper()
	opts.IPv6 = opts.IPv6 || v6
	l := labtest.New(t, opts)
	p := &xdpPair{lab: l}
	for i, pp := range []**dataplane.AFXDPPort{&p.a, &p.b} {
		h := &l.Hosts[i]
		addr := h.Addr.Addr()
		if v6 {
			addr = h.Addr6.Addr()
		}
		o := xo
		o.Ifname = h.Ifname
		o.Local = netip.AddrPortFrom(addr, testPort)
		err := h.Do(func() error {
			var err error
			*pp, err = dataplane.NewAFXDPPort(o)
			return err
		})
		if err != nil {
			t.Fatalf("AF_XDP port on %s: %v", h.Name, err)
		}
		port := *pp
		t.Cleanup(func() { port.Close() })
	}
	return p
}

// payload writes seq and a pattern derived from it.
func payload(b []byte, seq uint64) {
	binary.LittleEndian.PutUint64(b, seq)
	for i := 8; i < len(b); i++ {
		b[i] = byte(seq) ^ byte(i*13)
	}
}

func checkPayload(b []byte, size int) (uint64, bool) {
	if len(b) != size {
		return 0, false
	}
	seq := binary.LittleEndian.Uint64(b)
	for i := 8; i < len(b); i++ {
		if b[i] != byte(seq)^byte(i*13) {
			return seq, false
		}
	}
	return seq, true
}

// receiver drains p into a seen-set until stop, counting bad payloads.
type receiver struct {
	mu      sync.Mutex
	seen    map[uint64]int
	bad     int
	wrongTS int
	done    chan struct{}
	err     error
}

func startReceiver(p dataplane.Port, size int, wantTOS int) (*receiver, func()) {
	r := &receiver{seen: make(map[uint64]int), done: make(chan struct{})}
	stop := make(chan struct{})
	go func() {
		defer close(r.done)
		pkts := make([]dataplane.Packet, 64)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 0, 2048)
		}
		p.SetRecvTimeout(20 * time.Millisecond)
		for {
			n, err := p.Recv(pkts)
			if errors.Is(err, dataplane.ErrTimeout) {
				select {
				case <-stop:
					return
				default:
					continue
				}
			}
			if err != nil {
				r.err = err
				return
			}
			r.mu.Lock()
			for _, pk := range pkts[:n] {
				seq, ok := checkPayload(pk.Buf, size)
				if !ok {
					r.bad++
					continue
				}
				if wantTOS >= 0 && int(pk.TOS) != wantTOS {
					r.wrongTS++
				}
				r.seen[seq]++
			}
			r.mu.Unlock()
		}
	}()
	return r, func() { close(stop); <-r.done }
}

// sendLockstep sends total packets in batches, and after each batch waits
// until the receiving dispatcher has seen all of them and the receiving port
// has delivered all it was given, so no queue can overflow and every loss is
// an injected one.
func sendLockstep(t *testing.T, tx, rx *dataplane.AFXDPPort, dst netip.AddrPort, total, size int, tos uint8) {
	t.Helper()
	const batch = 64
	pkts := make([]dataplane.Packet, batch)
	for i := range pkts {
		pkts[i] = dataplane.Packet{Buf: make([]byte, size), Addr: dst, TOS: tos}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for seq := 0; seq < total; {
		n := min(batch, total-seq)
		for i := 0; i < n; i++ {
			payload(pkts[i].Buf, uint64(seq+i))
		}
		for off := 0; off < n; {
			k, err := tx.Send(pkts[off:n])
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			off += k
		}
		seq += n
		for {
			c, err := rx.Dispatcher().Counters()
			if err != nil {
				t.Fatal(err)
			}
			oc := c[bpf.ClassOnet]
			delivered := rx.Stats().RxPackets.Load() + rx.Stats().RxDropped.Load()
			if oc.Packets == uint64(seq) && delivered == oc.Packets-oc.FaultDrop-oc.RedirectFail {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %d sent: dispatcher saw %d (fault drops %d, redirect failures %d), port delivered %d",
					seq, oc.Packets, oc.FaultDrop, oc.RedirectFail, delivered)
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
}

func TestAFXDPEndToEnd(t *testing.T) {
	const total, size = 100_000, 256
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{}, false)
	if got := p.a.Caps(); got.Kind != "af_xdp" || got.Reason == "" {
		t.Fatalf("caps = %+v", got)
	}
	t.Logf("port: %s", p.a.Caps().Reason)
	r, stop := startReceiver(p.b, size, -1)
	sendLockstep(t, p.a, p.b, p.b.LocalAddr(), total, size, 0)
	stop()
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.seen) != total || r.bad != 0 {
		t.Fatalf("received %d distinct of %d, %d corrupted", len(r.seen), total, r.bad)
	}
	for seq, n := range r.seen {
		if n != 1 || seq >= total {
			t.Fatalf("seq %d seen %d times", seq, n)
		}
	}
	c, err := p.b.Dispatcher().Counters()
	if err != nil {
		t.Fatal(err)
	}
	frame := 14 + 20 + 8 + size
	want := bpf.ClassCounters{Packets: total, Bytes: uint64(total * frame)}
	if c[bpf.ClassOnet] != want {
		t.Fatalf("receiver onet counters = %+v, want %+v", c[bpf.ClassOnet], want)
	}
	if c[bpf.ClassRoCEv2].Packets != 0 {
		t.Fatalf("RoCEv2 class saw %d packets, want 0", c[bpf.ClassRoCEv2].Packets)
	}
	if got := p.a.Stats().TxPackets.Load(); got != total {
		t.Fatalf("sender TxPackets = %d, want %d", got, total)
	}
	if got := p.b.Stats().RxBytes.Load(); got != total*size {
		t.Fatalf("receiver RxBytes = %d, want %d", got, total*size)
	}
	if got := p.b.Stats().RxDropped.Load(); got != 0 {
		t.Fatalf("receiver RxDropped = %d", got)
	}
}

func TestAFXDPFaultInjection(t *testing.T) {
	const total, size = 100_000, 64
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{}, false)
	if err := p.b.Dispatcher().SetFault(bpf.ClassOnet, 100_000); err != nil { // 10 %
		t.Fatal(err)
	}
	r, stop := startReceiver(p.b, size, -1)
	sendLockstep(t, p.a, p.b, p.b.LocalAddr(), total, size, 0)
	stop()
	if r.err != nil || r.bad != 0 {
		t.Fatalf("receiver: err %v, %d corrupted", r.err, r.bad)
	}
	got := len(r.seen)
	share := float64(got) / total
	if share < 0.88 || share > 0.92 {
		t.Fatalf("received %.4f of the packets with 10%% injected loss, want 0.90 ± 0.02", share)
	}
	c, err := p.b.Dispatcher().Counters()
	if err != nil {
		t.Fatal(err)
	}
	if lost := uint64(total - got); c[bpf.ClassOnet].FaultDrop != lost {
		t.Fatalf("fault_drop = %d, lost = %d: they must be equal", c[bpf.ClassOnet].FaultDrop, lost)
	}
	t.Logf("received %d of %d (%.2f%%), fault_drop %d", got, total, 100*share, c[bpf.ClassOnet].FaultDrop)
}

func TestAFXDPIPv6AndECN(t *testing.T) {
	const total, size = 2_000, 100
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{BusyPoll: true}, true)
	r, stop := startReceiver(p.b, size, int(0x28|dataplane.ECNCE))
	sendLockstep(t, p.a, p.b, p.b.LocalAddr(), total, size, 0x28|dataplane.ECNCE)
	stop()
	if r.err != nil || r.bad != 0 || r.wrongTS != 0 || len(r.seen) != total {
		t.Fatalf("received %d of %d: err %v, %d corrupted, %d with the wrong TOS", len(r.seen), total, r.err, r.bad, r.wrongTS)
	}
	if got := p.b.Stats().RxCE.Load(); got != total {
		t.Fatalf("RxCE = %d, want %d", got, total)
	}
	c, err := p.b.Dispatcher().Counters()
	if err != nil {
		t.Fatal(err)
	}
	if oc := c[bpf.ClassOnet]; oc.CE != total || oc.Bytes != uint64(total*(14+40+8+size)) {
		t.Fatalf("onet counters = %+v, want CE %d and IPv6 frame bytes", oc, total)
	}
}

func TestAFXDPZeroAllocs(t *testing.T) {
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{}, false)
	if err := p.a.AddPeer(p.b.LocalAddr().Addr()); err != nil {
		t.Fatal(err)
	}
	out := make([]dataplane.Packet, 8)
	in := make([]dataplane.Packet, 8)
	for i := range out {
		out[i] = dataplane.Packet{Buf: make([]byte, 64), Addr: p.b.LocalAddr()}
		in[i].Buf = make([]byte, 0, 2048)
	}
	p.b.SetRecvTimeout(time.Second)
	var failed error
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := p.a.Send(out); err != nil {
			failed = err
		}
		for got := 0; got < len(out); {
			n, err := p.b.Recv(in)
			if err != nil {
				failed = err
				return
			}
			got += n
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Fatalf("Send+Recv allocate %.1f times per batch, want 0", allocs)
	}
}

func TestAFXDPErrors(t *testing.T) {
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{}, false)
	big := []dataplane.Packet{{Buf: make([]byte, p.a.MaxPayload()+1), Addr: p.b.LocalAddr()}}
	if n, err := p.a.Send(big); n != 0 || !errors.Is(err, dataplane.ErrTooBig) {
		t.Fatalf("oversize send = %d, %v; want 0, ErrTooBig", n, err)
	}
	// 198.19.255.254 is inside the benchmark block but on no lab link.
	far := []dataplane.Packet{{Buf: make([]byte, 8), Addr: netip.MustParseAddrPort("198.19.255.254:4792")}}
	if n, err := p.a.Send(far); n != 0 || !errors.Is(err, dataplane.ErrNoRoute) {
		t.Fatalf("send to unroutable = %d, %v; want 0, ErrNoRoute", n, err)
	}
	noPort := []dataplane.Packet{{Buf: make([]byte, 8), Addr: netip.AddrPortFrom(p.b.LocalAddr().Addr(), 0)}}
	if n, err := p.a.Send(noPort); n != 0 || !errors.Is(err, dataplane.ErrNoRoute) {
		t.Fatalf("send to port 0 = %d, %v; want 0, ErrNoRoute", n, err)
	}
	// One port per interface: a second one cannot attach its dispatcher, and
	// its failure leaves the first working.
	h := &p.lab.Hosts[1]
	err := h.Do(func() error {
		q, err := dataplane.NewAFXDPPort(dataplane.AFXDPOptions{Ifname: h.Ifname, Local: netip.AddrPortFrom(h.Addr.Addr(), testPort+1)})
		if err == nil {
			q.Close()
		}
		return err
	})
	if err == nil {
		t.Fatal("a second AF_XDP port on an interface that has one succeeded")
	}
	t.Logf("second port: %v", err)
	r, stop := startReceiver(p.b, 64, -1)
	sendLockstep(t, p.a, p.b, p.b.LocalAddr(), 10, 64, 0)
	stop()
	p.b.SetRecvTimeout(0) // the receiver left it at 20ms
	if len(r.seen) != 10 || r.bad != 0 || r.err != nil {
		t.Fatalf("first port received %d of 10 (%d corrupted, error %v) after the second one failed", len(r.seen), r.bad, r.err)
	}
	// Close unblocks a pending Recv.
	errc := make(chan error, 1)
	go func() {
		_, err := p.b.Recv(make([]dataplane.Packet, 1))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := p.b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, dataplane.ErrClosed) {
			t.Fatalf("Recv after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Recv")
	}
	if _, err := p.b.Send(far); !errors.Is(err, dataplane.ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	// Options are checked before anything is created.
	if _, err := dataplane.NewAFXDPPort(dataplane.AFXDPOptions{Ifname: "eth0"}); err == nil {
		t.Fatal("NewAFXDPPort without a local address succeeded")
	}
}

// BenchmarkAFXDPSendRecv measures one-way packet rate between two lab hosts:
// b.N packets of 64 B sent in batches of 64, received by a busy-polling port.
func BenchmarkAFXDPSendRecv(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			p := newXDPPairTB(b, dataplane.AFXDPOptions{BusyPoll: true})
			if err := p.a.AddPeer(p.b.LocalAddr().Addr()); err != nil {
				b.Fatal(err)
			}
			out := make([]dataplane.Packet, 64)
			for i := range out {
				out[i] = dataplane.Packet{Buf: make([]byte, size), Addr: p.b.LocalAddr()}
			}
			var got atomic.Uint64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				in := make([]dataplane.Packet, 64)
				for i := range in {
					in[i].Buf = make([]byte, 0, 2048)
				}
				p.b.SetRecvTimeout(10 * time.Millisecond)
				for {
					n, _ := p.b.Recv(in)
					got.Add(uint64(n))
					select {
					case <-stop:
						return
					default:
					}
				}
			}()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				n := min(len(out), b.N-sent)
				k, err := p.a.Send(out[:n])
				if err != nil {
					b.Fatal(err)
				}
				sent += k
			}
			b.StopTimer()
			time.Sleep(20 * time.Millisecond)
			close(stop)
			<-done
			b.ReportMetric(float64(got.Load())/float64(b.N), "delivered/op")
		})
	}
}

// TestAFXDPReopen: closing a port releases its queue binding at once, so a
// new port binds the same queue (asavie/xdp alone leaves the rings mapped
// and the next bind fails with EBUSY).
func TestAFXDPReopen(t *testing.T) {
	l := labtest.New(t, lab.Options{})
	h := &l.Hosts[0]
	for i := 0; i < 4; i++ {
		err := h.Do(func() error {
			p, err := dataplane.NewAFXDPPort(dataplane.AFXDPOptions{Ifname: h.Ifname, Local: netip.AddrPortFrom(h.Addr.Addr(), testPort)})
			if err != nil {
				return err
			}
			return p.Close()
		})
		if err != nil {
			t.Fatalf("open/close #%d: %v", i, err)
		}
	}
}

// TestAFXDPMultiQueue: frames that arrive on rx queue 1 reach the port only
// through the socket bound to queue 1. A sender bound to tx queue 1 makes
// the veth peer receive on its queue 1.
func TestAFXDPMultiQueue(t *testing.T) {
	l := labtest.New(t, lab.Options{RxQueues: 2})
	open := func(h *lab.Host, queues []int) *dataplane.AFXDPPort {
		var p *dataplane.AFXDPPort
		err := h.Do(func() error {
			var err error
			p, err = dataplane.NewAFXDPPort(dataplane.AFXDPOptions{Ifname: h.Ifname, Local: netip.AddrPortFrom(h.Addr.Addr(), testPort), Queues: queues})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	a := open(&l.Hosts[0], []int{1})

	// Receiver bound to queue 0 only: every frame falls back to the kernel.
	b0 := open(&l.Hosts[1], []int{0})
	sendLockstep(t, a, b0, b0.LocalAddr(), 100, 64, 0)
	c, err := b0.Dispatcher().Counters()
	if err != nil {
		t.Fatal(err)
	}
	if oc := c[bpf.ClassOnet]; oc.Packets != 100 || oc.RedirectFail != 100 || b0.Stats().RxPackets.Load() != 0 {
		t.Fatalf("queue-0-only receiver: counters %+v, delivered %d; want all 100 on queue 1 falling back", oc, b0.Stats().RxPackets.Load())
	}
	b0.Close()

	// Receiver on every queue: all delivered through its queue-1 socket.
	b := open(&l.Hosts[1], nil)
	r, stop := startReceiver(b, 64, -1)
	sendLockstep(t, a, b, b.LocalAddr(), 1000, 64, 0)
	stop()
	if len(r.seen) != 1000 || r.bad != 0 {
		t.Fatalf("received %d of 1000 (%d corrupted)", len(r.seen), r.bad)
	}
	if c, _ := b.Dispatcher().Counters(); c[bpf.ClassOnet].RedirectFail != 0 {
		t.Fatalf("redirect failures with sockets on both queues: %+v", c[bpf.ClassOnet])
	}
}

// TestAFXDPReceivesIPID: the IPv4 identification of a received frame
// reaches the caller (the RoCEv2 ICRC covers it and NICs number packets).
func TestAFXDPReceivesIPID(t *testing.T) {
	l := labtest.New(t, lab.Options{})
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	var rx *dataplane.AFXDPPort
	if err := h1.Do(func() error {
		var err error
		rx, err = dataplane.NewAFXDPPort(dataplane.AFXDPOptions{Ifname: h1.Ifname, Local: netip.AddrPortFrom(h1.Addr.Addr(), testPort)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	spec := dataplane.FrameSpec{
		SrcMAC: [6]byte(h0.MAC), DstMAC: [6]byte(h1.MAC),
		Src: netip.AddrPortFrom(h0.Addr.Addr(), 5000), Dst: rx.LocalAddr(),
	}
	frame := make([]byte, 128)
	hl := spec.HeaderLen()
	copy(frame[hl:], "payload!")
	n, err := dataplane.WriteUDPFrame(frame, &spec, 8)
	if err != nil {
		t.Fatal(err)
	}
	frame = frame[:n]
	ip := frame[14:34]
	ip[4], ip[5] = 0x71, 0x8c // identification 0x718c
	ip[10], ip[11] = 0, 0
	sum := dataplane.Checksum(ip)
	ip[10], ip[11] = byte(sum>>8), byte(sum)
	if err := h0.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: h0.Ifindex, Halen: 6, Addr: [8]byte(append(h1.MAC[:6:6], 0, 0))})
	}); err != nil {
		t.Fatal(err)
	}
	rx.SetRecvTimeout(2 * time.Second)
	pkts := []dataplane.Packet{{Buf: make([]byte, 0, 2048)}}
	if _, err := rx.Recv(pkts); err != nil {
		t.Fatal(err)
	}
	if pkts[0].IPID != 0x718c || string(pkts[0].Buf) != "payload!" {
		t.Fatalf("received IPID %#x payload %q, want 0x718c and the payload", pkts[0].IPID, pkts[0].Buf)
	}
}

// TestAFXDPNoUDPChecksum: with NoUDPChecksum, IPv4 frames leave with UDP
// checksum 0 (RoCEv2 style); without it, with a valid checksum.
func TestAFXDPNoUDPChecksum(t *testing.T) {
	for _, noCsum := range []bool{true, false} {
		l := labtest.New(t, lab.Options{})
		h0, h1 := &l.Hosts[0], &l.Hosts[1]
		var tx *dataplane.AFXDPPort
		if err := h0.Do(func() error {
			var err error
			tx, err = dataplane.NewAFXDPPort(dataplane.AFXDPOptions{Ifname: h0.Ifname, Local: netip.AddrPortFrom(h0.Addr.Addr(), testPort), NoUDPChecksum: noCsum})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var fd int
		if err := h1.Do(func() error {
			var err error
			fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_IP)))
			if err != nil {
				return err
			}
			tv := unix.NsecToTimeval(int64(2 * time.Second))
			return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := tx.Send([]dataplane.Packet{{Buf: []byte("checksum?"), Addr: netip.AddrPortFrom(h1.Addr.Addr(), 4000)}}); n != 1 || err != nil {
			t.Fatalf("send: %d, %v", n, err)
		}
		buf := make([]byte, 2048)
		var f dataplane.UDPFrame
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				t.Fatalf("no frame captured: %v", err)
			}
			if dataplane.ParseUDPFrame(buf[:n], &f) == nil && f.Dst.Port() == 4000 { // not 9: the neighbour probe goes there
				if noCsum != (f.UDPChecksum == 0) || !dataplane.VerifyUDPChecksum(buf[:n], &f) {
					t.Fatalf("NoUDPChecksum %v: checksum %#04x", noCsum, f.UDPChecksum)
				}
				break
			}
		}
		unix.Close(fd)
		tx.Close()
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
