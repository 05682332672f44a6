//go:build linux

package dataplane

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var loopbacks = []struct {
	name string
	addr netip.Addr
}{
	{"ipv4", netip.MustParseAddr("127.0.0.1")},
	{"ipv6", netip.MustParseAddr("::1")},
}

// newUDPPair opens two ports on loopback with the given options (Local is
// overwritten) and closes them when the test ends.
func newUDPPair(t testing.TB, addr netip.Addr, txOpts, rxOpts UDPPortOptions) (tx, rx *UDPPort) {
	t.Helper()
	txOpts.Local = netip.AddrPortFrom(addr, 0)
	rxOpts.Local = netip.AddrPortFrom(addr, 0)
	var err error
	if tx, err = NewUDPPort(txOpts); err != nil {
		t.Fatalf("open sender: %v", err)
	}
	t.Cleanup(func() { tx.Close() })
	if rx, err = NewUDPPort(rxOpts); err != nil {
		t.Fatalf("open receiver: %v", err)
	}
	t.Cleanup(func() { rx.Close() })
	rx.SetRecvTimeout(5 * time.Second)
	return tx, rx
}

// fillPayload writes a sequence number and a pattern derived from it.
func fillPayload(b []byte, seq uint32) {
	for i := range b {
		b[i] = byte(seq*7 + uint32(i))
	}
	if len(b) >= 4 {
		binary.BigEndian.PutUint32(b, seq)
	}
}

func checkPayload(t testing.TB, got []byte, seq uint32, size int) {
	t.Helper()
	want := make([]byte, size)
	fillPayload(want, seq)
	if !bytes.Equal(got, want) {
		t.Fatalf("packet %d: payload mismatch: got %d bytes %x..., want %d bytes %x...",
			seq, len(got), got[:min(8, len(got))], size, want[:min(8, len(want))])
	}
}

func makeRecvBatch(n, bufCap int) []Packet {
	pkts := make([]Packet, n)
	for i := range pkts {
		pkts[i].Buf = make([]byte, bufCap)
	}
	return pkts
}

// sendAll sends pkts, retrying what a full socket buffer did not take.
func sendAll(t testing.TB, p *UDPPort, pkts []Packet) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(pkts) > 0 {
		n, err := p.Send(pkts)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		pkts = pkts[n:]
		if time.Now().After(deadline) {
			t.Fatalf("send: %d packets not taken within 5s", len(pkts))
		}
	}
}

// recvN receives exactly want datagrams in batches of batch and returns them
// (copies) in arrival order.
func recvN(t testing.TB, p *UDPPort, want, batch, bufCap int) []Packet {
	t.Helper()
	out := make([]Packet, 0, want)
	pkts := makeRecvBatch(batch, bufCap)
	for len(out) < want {
		n, err := p.Recv(pkts[:min(batch, want-len(out))])
		if err != nil {
			t.Fatalf("recv after %d of %d: %v", len(out), want, err)
		}
		if n == 0 {
			t.Fatal("recv returned (0, nil)")
		}
		for _, pk := range pkts[:n] {
			out = append(out, Packet{Buf: append([]byte(nil), pk.Buf...), Addr: pk.Addr, TOS: pk.TOS})
		}
	}
	return out
}

func TestUDPPortSendRecvBatches(t *testing.T) {
	for _, lb := range loopbacks {
		for _, off := range []Offload{OffloadOff, OffloadAuto} {
			name := lb.name + "/offload-auto"
			if off == OffloadOff {
				name = lb.name + "/offload-off"
			}
			t.Run(name, func(t *testing.T) {
				opts := UDPPortOptions{GSO: off, GRO: off, BatchSize: 16}
				tx, rx := newUDPPair(t, lb.addr, opts, opts)
				if got := tx.LocalAddr().Addr(); got != lb.addr {
					t.Fatalf("local addr %v, want %v", got, lb.addr)
				}
				const total, batch = 320, 40 // batch above BatchSize: Send must chunk
				var seq uint32
				var wantBytes uint64
				for sent := 0; sent < total; sent += batch {
					pkts := make([]Packet, batch)
					for i := range pkts {
						// Mixed sizes with runs of equal ones, up to MaxPayload.
						size := []int{1, 64, 64, 64, 700, tx.MaxPayload(), tx.MaxPayload(), 0, 5}[(sent+i)%9]
						pkts[i] = Packet{Buf: make([]byte, size), Addr: rx.LocalAddr()}
						fillPayload(pkts[i].Buf, seq+uint32(i))
						wantBytes += uint64(size)
					}
					sendAll(t, tx, pkts)
					got := recvN(t, rx, batch, 7, 2048)
					for i, g := range got {
						checkPayload(t, g.Buf, seq+uint32(i), len(pkts[i].Buf))
						if g.Addr != tx.LocalAddr() {
							t.Fatalf("source %v, want %v", g.Addr, tx.LocalAddr())
						}
						if g.Addr.Addr().Is4In6() {
							t.Fatalf("source %v is 4in6", g.Addr)
						}
					}
					seq += batch
				}
				st, sr := tx.Stats(), rx.Stats()
				if got := st.TxPackets.Load(); got != total {
					t.Errorf("TxPackets %d, want %d", got, total)
				}
				if got := st.TxBytes.Load(); got != wantBytes {
					t.Errorf("TxBytes %d, want %d", got, wantBytes)
				}
				if got := sr.RxPackets.Load(); got != total {
					t.Errorf("RxPackets %d, want %d", got, total)
				}
				if got := sr.RxBytes.Load(); got != wantBytes {
					t.Errorf("RxBytes %d, want %d", got, wantBytes)
				}
				if st.TxDropped.Load()+sr.RxTruncated.Load()+sr.RxCE.Load() != 0 {
					t.Errorf("unexpected drops/truncations/CE: %d %d %d", st.TxDropped.Load(), sr.RxTruncated.Load(), sr.RxCE.Load())
				}
			})
		}
	}
}

func TestUDPPortTOSRoundTrip(t *testing.T) {
	for _, lb := range loopbacks {
		t.Run(lb.name, func(t *testing.T) {
			tx, rx := newUDPPair(t, lb.addr, UDPPortOptions{}, UDPPortOptions{})
			if c := rx.Caps(); !c.RxTOS || !tx.Caps().TxTOS || c.Kind != "udp" {
				t.Fatalf("caps %+v: want kind udp with RxTOS and TxTOS", c)
			}
			const ef = 46 << 2
			tos := []uint8{ef | ECNCE, ef | ECNCE, ECNECT0, ECNECT1, 0, ECNCE, ef}
			pkts := make([]Packet, len(tos))
			for i := range pkts {
				pkts[i] = Packet{Buf: make([]byte, 100), Addr: rx.LocalAddr(), TOS: tos[i]}
				fillPayload(pkts[i].Buf, uint32(i))
			}
			sendAll(t, tx, pkts)
			got := recvN(t, rx, len(pkts), 16, 2048)
			for i, g := range got {
				checkPayload(t, g.Buf, uint32(i), 100)
				if g.TOS != tos[i] {
					t.Errorf("packet %d: TOS %#x, want %#x", i, g.TOS, tos[i])
				}
			}
			if got := rx.Stats().RxCE.Load(); got != 3 {
				t.Errorf("RxCE %d, want 3", got)
			}
		})
	}
}

func TestUDPPortOversizeAndBadDestination(t *testing.T) {
	tx, rx := newUDPPair(t, netip.MustParseAddr("127.0.0.1"), UDPPortOptions{}, UDPPortOptions{})
	pkts := []Packet{
		{Buf: make([]byte, 10), Addr: rx.LocalAddr()},
		{Buf: make([]byte, 10), Addr: rx.LocalAddr()},
		{Buf: make([]byte, tx.MaxPayload()+1), Addr: rx.LocalAddr()},
		{Buf: make([]byte, 10), Addr: rx.LocalAddr()},
	}
	n, err := tx.Send(pkts)
	if n != 2 || !errors.Is(err, ErrTooBig) {
		t.Fatalf("Send with oversize third packet = (%d, %v), want (2, ErrTooBig)", n, err)
	}
	n, err = tx.Send([]Packet{{Buf: make([]byte, 10), Addr: netip.MustParseAddrPort("[::1]:9")}})
	if n != 0 || !errors.Is(err, ErrNoRoute) {
		t.Fatalf("Send IPv6 destination on IPv4 port = (%d, %v), want (0, ErrNoRoute)", n, err)
	}
	recvN(t, rx, 2, 4, 64)
	if got := tx.Stats().TxPackets.Load(); got != 2 {
		t.Fatalf("TxPackets %d, want 2", got)
	}
	if _, err := NewUDPPort(UDPPortOptions{Local: netip.MustParseAddrPort("127.0.0.1:0"), MaxPayload: 70000}); !errors.Is(err, ErrTooBig) {
		t.Fatalf("MaxPayload 70000: err %v, want ErrTooBig", err)
	}
}

func TestUDPPortTruncationCounted(t *testing.T) {
	for _, off := range []Offload{OffloadOff, OffloadAuto} {
		tx, rx := newUDPPair(t, netip.MustParseAddr("127.0.0.1"), UDPPortOptions{GSO: off}, UDPPortOptions{GRO: off})
		sizes := []int{100, 1000, 100, 500, 501, 1000, 1000, 1000, 20}
		pkts := make([]Packet, len(sizes))
		for i, s := range sizes {
			pkts[i] = Packet{Buf: make([]byte, s), Addr: rx.LocalAddr()}
			fillPayload(pkts[i].Buf, uint32(i))
		}
		sendAll(t, tx, pkts)
		got := recvN(t, rx, 4, 8, 500) // buffers of cap 500
		for i, want := range []uint32{0, 2, 3, 8} {
			checkPayload(t, got[i].Buf, want, sizes[want])
		}
		if got := rx.Stats().RxTruncated.Load(); got != 5 {
			t.Fatalf("offload %d: RxTruncated %d, want 5", off, got)
		}
		if got := rx.Stats().RxPackets.Load(); got != 4 {
			t.Fatalf("offload %d: RxPackets %d, want 4", off, got)
		}
	}
}

// TestUDPPortSegmentationOffload sends long runs of equal-size datagrams,
// which the sender coalesces with UDP_SEGMENT and the receiver gets as GRO
// super-datagrams, and reads them back a few at a time so that segments
// stay buffered between Recv calls.
func TestUDPPortSegmentationOffload(t *testing.T) {
	for _, lb := range loopbacks {
		t.Run(lb.name, func(t *testing.T) {
			tx, rx := newUDPPair(t, lb.addr, UDPPortOptions{GSO: OffloadOn}, UDPPortOptions{GRO: OffloadOn})
			const total, size = 500, 1000
			pkts := make([]Packet, total)
			var wantBytes uint64
			for i := range pkts {
				s := size
				if i%100 == 99 {
					s = 333 // a shorter last segment ends each run
				}
				pkts[i] = Packet{Buf: make([]byte, s), Addr: rx.LocalAddr(), TOS: ECNECT0}
				fillPayload(pkts[i].Buf, uint32(i))
				wantBytes += uint64(s)
			}
			for off := 0; off < total; off += 100 {
				sendAll(t, tx, pkts[off:off+100])
				got := recvN(t, rx, 100, 7, 1500)
				for i, g := range got {
					checkPayload(t, g.Buf, uint32(off+i), len(pkts[off+i].Buf))
					if g.TOS != ECNECT0 || g.Addr != tx.LocalAddr() {
						t.Fatalf("packet %d: TOS %#x from %v, want %#x from %v", off+i, g.TOS, g.Addr, ECNECT0, tx.LocalAddr())
					}
				}
			}
			if gso, _ := tx.Offloads(); !gso {
				t.Fatal("GSO turned itself off on loopback")
			}
			if rx.rx.groSplits == 0 {
				t.Fatal("receiver never split a GRO super-datagram: the offload path was not exercised")
			}
			if got := rx.Stats().RxPackets.Load(); got != total {
				t.Fatalf("RxPackets %d, want %d", got, total)
			}
			if got := rx.Stats().RxBytes.Load(); got != wantBytes {
				t.Fatalf("RxBytes %d, want %d", got, wantBytes)
			}
			if got := tx.Stats().TxPackets.Load(); got != total {
				t.Fatalf("TxPackets %d, want %d", got, total)
			}
		})
	}
}

// TestUDPPortGSOToPlainReceiver checks that the kernel splits segmented sends
// for a receiver without GRO.
func TestUDPPortGSOToPlainReceiver(t *testing.T) {
	tx, rx := newUDPPair(t, netip.MustParseAddr("127.0.0.1"), UDPPortOptions{GSO: OffloadOn}, UDPPortOptions{GRO: OffloadOff})
	pkts := make([]Packet, 64)
	for i := range pkts {
		pkts[i] = Packet{Buf: make([]byte, 1200), Addr: rx.LocalAddr()}
		fillPayload(pkts[i].Buf, uint32(i))
	}
	sendAll(t, tx, pkts)
	for i, g := range recvN(t, rx, len(pkts), 64, 1500) {
		checkPayload(t, g.Buf, uint32(i), 1200)
	}
	if rx.rx.groSplits != 0 {
		t.Fatalf("GRO split %d datagrams with GRO off", rx.rx.groSplits)
	}
}

func TestUDPPortRecvTimeout(t *testing.T) {
	_, rx := newUDPPair(t, netip.MustParseAddr("127.0.0.1"), UDPPortOptions{}, UDPPortOptions{})
	rx.SetRecvTimeout(50 * time.Millisecond)
	start := time.Now()
	n, err := rx.Recv(makeRecvBatch(4, 64))
	if n != 0 || !errors.Is(err, ErrTimeout) {
		t.Fatalf("Recv = (%d, %v), want (0, ErrTimeout)", n, err)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("Recv timed out after %v, before the 50ms timeout", el)
	}
}

func TestUDPPortCloseUnblocksRecv(t *testing.T) {
	tx, rx := newUDPPair(t, netip.MustParseAddr("127.0.0.1"), UDPPortOptions{}, UDPPortOptions{})
	rx.SetRecvTimeout(0)
	done := make(chan error, 1)
	go func() {
		_, err := rx.Recv(makeRecvBatch(4, 64))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := rx.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Recv returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Recv within 5s")
	}
	if err := rx.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	tx.Close()
	if n, err := tx.Send([]Packet{{Buf: []byte("x"), Addr: rx.LocalAddr()}}); n != 0 || !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = (%d, %v), want (0, ErrClosed)", n, err)
	}
	if _, err := rx.Recv(makeRecvBatch(1, 64)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close: %v, want ErrClosed", err)
	}
}

func TestUDPPortZeroAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		off  Offload
	}{{"plain-64B", 64, OffloadOff}, {"gso-gro-1400B", 1400, OffloadAuto}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := UDPPortOptions{GSO: tc.off, GRO: tc.off, BatchSize: 32}
			tx, rx := newUDPPair(t, netip.MustParseAddr("127.0.0.1"), opts, opts)
			rx.SetRecvTimeout(2 * time.Second)
			const batch = 32
			out := make([]Packet, batch)
			for i := range out {
				out[i] = Packet{Buf: make([]byte, tc.size), Addr: rx.LocalAddr(), TOS: ECNECT0}
			}
			in := makeRecvBatch(batch, 2048)
			var failed error
			round := func() {
				sent := 0
				for sent < batch {
					n, err := tx.Send(out[sent:])
					if err != nil {
						failed = err
						return
					}
					sent += n
				}
				for got := 0; got < batch; {
					n, err := rx.Recv(in)
					if err != nil {
						failed = err
						return
					}
					got += n
				}
			}
			round() // warm up
			if allocs := testing.AllocsPerRun(200, round); allocs != 0 {
				t.Fatalf("Send+Recv of %d packets allocated %.1f times per round", batch, allocs)
			}
			if failed != nil {
				t.Fatal(failed)
			}
		})
	}
}

// TestUDPPortGSOFallback makes the kernel refuse segmented sends (with
// SO_NO_CHECK set, UDP_SEGMENT sends fail with EINVAL) and checks that Send
// turns GSO off and still delivers every datagram, in order.
func TestUDPPortGSOFallback(t *testing.T) {
	tx, rx := newUDPPair(t, netip.MustParseAddr("127.0.0.1"), UDPPortOptions{GSO: OffloadOn}, UDPPortOptions{})
	var serr error
	if err := tx.rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) }); err != nil || serr != nil {
		t.Fatalf("set SO_NO_CHECK: %v %v", err, serr)
	}
	pkts := make([]Packet, 40)
	for i := range pkts {
		pkts[i] = Packet{Buf: make([]byte, 500), Addr: rx.LocalAddr()}
		fillPayload(pkts[i].Buf, uint32(i))
	}
	sendAll(t, tx, pkts)
	for i, g := range recvN(t, rx, len(pkts), 16, 1500) {
		checkPayload(t, g.Buf, uint32(i), 500)
	}
	if gso, _ := tx.Offloads(); gso {
		t.Fatal("GSO still on after the kernel refused a segmented send")
	}
	if got := tx.Stats().TxPackets.Load(); got != uint64(len(pkts)) || tx.Stats().TxDropped.Load() != 0 {
		t.Fatalf("TxPackets %d TxDropped %d, want %d and 0", got, tx.Stats().TxDropped.Load(), len(pkts))
	}
}
