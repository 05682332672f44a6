package porttest

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
)

var (
	addrA = netip.MustParseAddrPort("198.18.0.1:4791")
	addrB = netip.MustParseAddrPort("198.18.0.2:4791")
)

func newPair(t *testing.T, opts NetworkOptions) (*Network, *Port, *Port) {
	t.Helper()
	n := NewNetwork(opts)
	a, err := n.NewPort(addrA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.NewPort(addrB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	b.SetRecvTimeout(5 * time.Second)
	return n, a, b
}

func seqPackets(count, size int, dst netip.AddrPort, tos uint8) []dataplane.Packet {
	pkts := make([]dataplane.Packet, count)
	for i := range pkts {
		pkts[i] = dataplane.Packet{Buf: make([]byte, size), Addr: dst, TOS: tos}
		binary.BigEndian.PutUint32(pkts[i].Buf, uint32(i))
		for j := 4; j < size; j++ {
			pkts[i].Buf[j] = byte(i + j)
		}
	}
	return pkts
}

func recvBatch(n, size int) []dataplane.Packet {
	pkts := make([]dataplane.Packet, n)
	for i := range pkts {
		pkts[i].Buf = make([]byte, size)
	}
	return pkts
}

// recvSeqs receives until the queue is empty and returns the sequence numbers.
func recvSeqs(t *testing.T, p *Port) []uint32 {
	t.Helper()
	var seqs []uint32
	in := recvBatch(16, 2048)
	for p.Queued() > 0 {
		n, err := p.Recv(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, pk := range in[:n] {
			seqs = append(seqs, binary.BigEndian.Uint32(pk.Buf))
		}
	}
	return seqs
}

func TestDeliveryIntactAndCounted(t *testing.T) {
	n, a, b := newPair(t, NetworkOptions{})
	if c := a.Caps(); c.Kind != "fake" || !c.RxTOS || !c.TxTOS {
		t.Fatalf("caps %+v", c)
	}
	out := seqPackets(100, 200, addrB, 0x2e<<2|dataplane.ECNECT0)
	if k, err := a.Send(out); k != 100 || err != nil {
		t.Fatalf("Send = (%d, %v), want (100, nil)", k, err)
	}
	out[0].Buf[5] = 0xff // the network copied: changing the sender's buffer changes nothing
	in := recvBatch(64, 2048)
	got := 0
	for got < 100 {
		k, err := b.Recv(in)
		if err != nil || k == 0 {
			t.Fatalf("Recv = (%d, %v)", k, err)
		}
		for _, pk := range in[:k] {
			if binary.BigEndian.Uint32(pk.Buf) != uint32(got) || len(pk.Buf) != 200 || pk.Buf[5] != byte(got+5) {
				t.Fatalf("packet %d: wrong payload %x", got, pk.Buf[:8])
			}
			if pk.Addr != addrA || pk.TOS != 0x2e<<2|dataplane.ECNECT0 {
				t.Fatalf("packet %d: from %v TOS %#x", got, pk.Addr, pk.TOS)
			}
			got++
		}
	}
	if a.Stats().TxPackets.Load() != 100 || a.Stats().TxBytes.Load() != 20000 ||
		b.Stats().RxPackets.Load() != 100 || b.Stats().RxBytes.Load() != 20000 {
		t.Fatalf("counters tx %d/%d rx %d/%d", a.Stats().TxPackets.Load(), a.Stats().TxBytes.Load(),
			b.Stats().RxPackets.Load(), b.Stats().RxBytes.Load())
	}
	if s := n.Stats(); s.Sent.Load() != 100 || s.Delivered.Load() != 100 || s.Lost.Load() != 0 {
		t.Fatalf("network sent %d delivered %d lost %d", s.Sent.Load(), s.Delivered.Load(), s.Lost.Load())
	}
}

func TestSendErrorsAndDrops(t *testing.T) {
	n, a, b := newPair(t, NetworkOptions{MTU: 1000, QueueLen: 8})
	if a.MaxPayload() != 972 {
		t.Fatalf("MaxPayload %d, want 972", a.MaxPayload())
	}
	out := seqPackets(3, 10, addrB, 0)
	out[2].Buf = make([]byte, 973)
	if k, err := a.Send(out); k != 2 || !errors.Is(err, dataplane.ErrTooBig) {
		t.Fatalf("Send oversize = (%d, %v), want (2, ErrTooBig)", k, err)
	}
	if k, err := a.Send([]dataplane.Packet{{Buf: []byte{1}}}); k != 0 || !errors.Is(err, dataplane.ErrNoRoute) {
		t.Fatalf("Send to no address = (%d, %v), want (0, ErrNoRoute)", k, err)
	}
	// 6 more fill the queue of 8; 4 beyond are dropped without blocking.
	if k, err := a.Send(seqPackets(10, 10, addrB, 0)); k != 10 || err != nil {
		t.Fatalf("Send = (%d, %v)", k, err)
	}
	if q, full := b.Queued(), n.Stats().QueueFull.Load(); q != 8 || full != 4 || b.Stats().RxDropped.Load() != 4 {
		t.Fatalf("queued %d full %d rxdropped %d, want 8 4 4", q, full, b.Stats().RxDropped.Load())
	}
	// Nobody listens here.
	if k, err := a.Send(seqPackets(2, 10, netip.MustParseAddrPort("198.18.0.9:1"), 0)); k != 2 || err != nil {
		t.Fatalf("Send = (%d, %v)", k, err)
	}
	if got := n.Stats().NoListener.Load(); got != 2 {
		t.Fatalf("NoListener %d, want 2", got)
	}
	// Datagrams longer than the receive buffer are dropped and counted.
	b2 := recvBatch(8, 5)
	b.SetRecvTimeout(10 * time.Millisecond)
	if k, err := b.Recv(b2); k != 0 || !errors.Is(err, dataplane.ErrTimeout) {
		t.Fatalf("Recv = (%d, %v), want (0, ErrTimeout)", k, err)
	}
	if got := b.Stats().RxTruncated.Load(); got != 8 {
		t.Fatalf("RxTruncated %d, want 8", got)
	}
}

// lossPattern replays the network's draws for count datagrams with no ECT.
func lossPattern(seed int64, ppm uint32, count int) []bool {
	rng := newRNG(seed)
	lost := make([]bool, count)
	for i := range lost {
		lost[i] = roll(rng, ppm)
	}
	return lost
}

func TestLossExactForSeed(t *testing.T) {
	const count, ppm, seed = 20000, 100_000, 42
	n, a, b := newPair(t, NetworkOptions{LossPPM: ppm, Seed: seed, QueueLen: count})
	out := seqPackets(count, 8, addrB, 0)
	for off := 0; off < count; off += 100 {
		if k, err := a.Send(out[off : off+100]); k != 100 || err != nil {
			t.Fatalf("Send = (%d, %v)", k, err)
		}
	}
	pattern := lossPattern(seed, ppm, count)
	var want []uint32
	for i, lost := range pattern {
		if !lost {
			want = append(want, uint32(i))
		}
	}
	lostCount := count - len(want)
	if lostCount < count/10-300 || lostCount > count/10+300 {
		t.Fatalf("seed %d lost %d of %d, far from 10%%: the draw is broken", seed, lostCount, count)
	}
	got := recvSeqs(t, b)
	if len(got) != len(want) {
		t.Fatalf("received %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("datagram %d: seq %d, want %d", i, got[i], want[i])
		}
	}
	if n.Stats().Lost.Load() != uint64(lostCount) {
		t.Fatalf("Lost %d, want %d", n.Stats().Lost.Load(), lostCount)
	}
	// SetLoss(0) stops losses.
	n.SetLoss(0)
	if k, _ := a.Send(out[:100]); k != 100 || b.Queued() != 100 {
		t.Fatalf("after SetLoss(0): sent %d queued %d, want 100 100", k, b.Queued())
	}
}

func TestCEMarkingOnlyECT(t *testing.T) {
	n, a, b := newPair(t, NetworkOptions{CEMarkPPM: 1_000_000, QueueLen: 64})
	tos := []uint8{dataplane.ECNNotECT, dataplane.ECNECT0, dataplane.ECNECT1, dataplane.ECNCE, 0xb8, 0xb8 | dataplane.ECNECT0}
	want := []uint8{0, 3, 3, 3, 0xb8, 0xbb}
	out := seqPackets(len(tos), 8, addrB, 0)
	for i := range out {
		out[i].TOS = tos[i]
	}
	a.Send(out)
	in := recvBatch(16, 64)
	k, err := b.Recv(in)
	if err != nil || k != len(tos) {
		t.Fatalf("Recv = (%d, %v)", k, err)
	}
	for i := range want {
		if in[i].TOS != want[i] {
			t.Errorf("TOS %#x arrived as %#x, want %#x", tos[i], in[i].TOS, want[i])
		}
	}
	if n.Stats().CEMarked.Load() != 3 || b.Stats().RxCE.Load() != 4 {
		t.Fatalf("CEMarked %d RxCE %d, want 3 and 4", n.Stats().CEMarked.Load(), b.Stats().RxCE.Load())
	}
	// With a partial probability the marks follow the seed.
	n.SetCEMark(500_000)
	ect := seqPackets(1000, 8, addrB, dataplane.ECNECT0)
	a.Send(ect[:32])
	a.Send(ect[32:64])
	marked := 0
	for b.Queued() > 0 {
		k, _ := b.Recv(in)
		for _, pk := range in[:k] {
			if pk.TOS == 3 {
				marked++
			}
		}
	}
	if marked == 0 || marked == 64 {
		t.Fatalf("%d of 64 marked at 50%%", marked)
	}
}

func TestTimeoutAndClose(t *testing.T) {
	n, a, b := newPair(t, NetworkOptions{})
	b.SetRecvTimeout(30 * time.Millisecond)
	start := time.Now()
	if k, err := b.Recv(recvBatch(1, 64)); k != 0 || !errors.Is(err, dataplane.ErrTimeout) {
		t.Fatalf("Recv = (%d, %v), want ErrTimeout", k, err)
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("timed out after %v", el)
	}
	b.SetRecvTimeout(0)
	done := make(chan error, 1)
	go func() {
		_, err := b.Recv(recvBatch(1, 64))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	select {
	case err := <-done:
		if !errors.Is(err, dataplane.ErrClosed) {
			t.Fatalf("blocked Recv returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Recv")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The address is free again; the closed port takes nothing.
	a.Send(seqPackets(1, 8, addrB, 0))
	if n.Stats().NoListener.Load() != 1 {
		t.Fatalf("NoListener %d, want 1", n.Stats().NoListener.Load())
	}
	b2, err := n.NewPort(addrB)
	if err != nil {
		t.Fatalf("reopen %v: %v", addrB, err)
	}
	defer b2.Close()
	if _, err := n.NewPort(addrB); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("second port at %v: %v, want ErrAddrInUse", addrB, err)
	}
	e, err := n.NewPort(netip.MustParseAddrPort("[fd00:198:18::1]:0"))
	if err != nil || e.LocalAddr().Port() < firstEphemeral || e.MaxPayload() != 1452 {
		t.Fatalf("ephemeral port: %v %v max %d", e.LocalAddr(), err, e.MaxPayload())
	}
	e.Close()
	a.Close()
	if k, err := a.Send(seqPackets(1, 8, addrB, 0)); k != 0 || !errors.Is(err, dataplane.ErrClosed) {
		t.Fatalf("Send after Close = (%d, %v)", k, err)
	}
}

// TestConcurrentSenders runs several senders into one receiver (run with
// -race) and checks that every datagram is accounted for exactly once.
func TestConcurrentSenders(t *testing.T) {
	const senders, perSender = 4, 2000
	n := NewNetwork(NetworkOptions{LossPPM: 50_000, QueueLen: 256, Seed: 7})
	rx, err := n.NewPort(netip.MustParseAddrPort("198.18.1.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	rx.SetRecvTimeout(200 * time.Millisecond)
	var wg sync.WaitGroup
	for s := range senders {
		tx, err := n.NewPort(netip.AddrPortFrom(netip.MustParseAddr("198.18.1.2"), uint16(100+s)))
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		wg.Go(func() {
			out := seqPackets(perSender, 16, rx.LocalAddr(), dataplane.ECNECT1)
			for off := 0; off < perSender; off += 50 {
				if k, err := tx.Send(out[off : off+50]); k != 50 || err != nil {
					t.Errorf("Send = (%d, %v)", k, err)
					return
				}
			}
		})
	}
	var received uint64
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		in := recvBatch(32, 64)
		for {
			k, err := rx.Recv(in)
			if errors.Is(err, dataplane.ErrTimeout) {
				return
			}
			if err != nil {
				t.Errorf("Recv: %v", err)
				return
			}
			received += uint64(k)
		}
	}()
	wg.Wait()
	<-recvDone
	s := n.Stats()
	if s.Sent.Load() != senders*perSender {
		t.Fatalf("Sent %d, want %d", s.Sent.Load(), senders*perSender)
	}
	if sum := s.Delivered.Load() + s.Lost.Load() + s.QueueFull.Load() + s.NoListener.Load(); sum != s.Sent.Load() {
		t.Fatalf("delivered+lost+full+nolistener = %d, sent %d", sum, s.Sent.Load())
	}
	if received != s.Delivered.Load() || received != rx.Stats().RxPackets.Load() {
		t.Fatalf("received %d, delivered %d, RxPackets %d", received, s.Delivered.Load(), rx.Stats().RxPackets.Load())
	}
	if s.Lost.Load() == 0 {
		t.Fatal("no loss at 5%")
	}
}

func TestZeroAllocs(t *testing.T) {
	_, a, b := newPair(t, NetworkOptions{QueueLen: 64})
	b.SetRecvTimeout(time.Second)
	out := seqPackets(32, 1000, addrB, dataplane.ECNECT0)
	in := recvBatch(32, 1500)
	round := func() {
		a.Send(out)
		for got := 0; got < len(out); {
			k, err := b.Recv(in)
			if err != nil {
				t.Fatal(err)
			}
			got += k
		}
	}
	round()
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Fatalf("Send+Recv allocated %.1f times per round", allocs)
	}
}
