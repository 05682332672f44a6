package dataplane_test

import (
	"errors"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/lab"
)

// TestAFXDPRingStats drives a real AF_XDP pair: k datagrams wait on the
// receiver's rx ring, then one Recv of one packet sees them; the sender's
// send queue holds k until the next Send reaps the completions.
func TestAFXDPRingStats(t *testing.T) {
	const frames, ring, k = 128, 64, 20
	p := newXDPPair(t, lab.Options{}, dataplane.AFXDPOptions{NumFrames: frames, RingSize: ring, Queues: []int{0}}, false)
	for _, port := range []*dataplane.AFXDPPort{p.a, p.b} {
		s, err := port.RingStats()
		if err != nil {
			t.Fatal(err)
		}
		want := dataplane.AFXDPRingStats{Queues: 1, RingSize: ring, FillRing: ring, UMEMFrames: frames, UMEMFreeFrames: frames / 2}
		if s != want {
			t.Fatalf("fresh port: %+v, want %+v", s, want)
		}
	}
	pkts := make([]dataplane.Packet, k)
	for i := range pkts {
		pkts[i] = dataplane.Packet{Buf: make([]byte, 100), Addr: p.b.LocalAddr()}
	}
	if n, err := p.a.Send(pkts); n != k || err != nil {
		t.Fatalf("send: %d of %d: %v", n, k, err)
	}
	s, _ := p.a.RingStats()
	if s.TxInFlight != k || s.TxRing != 0 || s.UMEMFreeFrames != frames/2-k {
		t.Errorf("sender after Send: %+v, want %d in flight, tx ring empty, %d free frames", s, k, frames/2-k)
	}
	if _, err := p.a.Send(nil); err != nil { // reaps the completions
		t.Fatal(err)
	}
	s, _ = p.a.RingStats()
	if s.TxInFlight != 0 || s.UMEMFreeFrames != frames/2 {
		t.Errorf("sender after reaping: %+v, want nothing in flight, %d free frames", s, frames/2)
	}
	// Wait until the receiver's dispatcher redirected all k into the socket.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := p.b.Dispatcher().Counters()
		if err != nil {
			t.Fatal(err)
		}
		if c[bpf.ClassOnet].Packets == k {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver's dispatcher saw %d of %d", c[bpf.ClassOnet].Packets, k)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the redirect flush after the counter
	p.b.SetRecvTimeout(time.Second)
	one := []dataplane.Packet{{Buf: make([]byte, 2048)}}
	if n, err := p.b.Recv(one); n != 1 || err != nil {
		t.Fatalf("recv: %d, %v", n, err)
	}
	s, _ = p.b.RingStats()
	want := dataplane.AFXDPRingStats{Queues: 1, RingSize: ring, RxRing: k, FillRing: ring - k + 1, UMEMFrames: frames, UMEMFreeFrames: frames / 2}
	if s != want {
		t.Errorf("receiver after taking 1 of %d: %+v, want %+v", k, s, want)
	}
	// Take the rest; the next look finds the ring empty.
	buf := make([]dataplane.Packet, 64)
	for i := range buf {
		buf[i].Buf = make([]byte, 2048)
	}
	if n, err := p.b.Recv(buf); n != k-1 || err != nil {
		t.Fatalf("recv rest: %d, %v", n, err)
	}
	p.b.SetRecvTimeout(10 * time.Millisecond)
	if _, err := p.b.Recv(buf); !errors.Is(err, dataplane.ErrTimeout) {
		t.Fatalf("recv on an empty ring: %v, want ErrTimeout", err)
	}
	s, _ = p.b.RingStats()
	want.RxRing, want.FillRing = 0, ring
	if s != want {
		t.Errorf("receiver drained: %+v, want %+v", s, want)
	}
	// Reading does not allocate, and a closed port says so.
	if n := testing.AllocsPerRun(100, func() { _, _ = p.b.RingStats() }); n != 0 {
		t.Errorf("RingStats allocates %v", n)
	}
	p.b.Close()
	if _, err := p.b.RingStats(); !errors.Is(err, dataplane.ErrClosed) {
		t.Errorf("RingStats on a closed port: %v, want ErrClosed", err)
	}
}
