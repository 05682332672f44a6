package rocev2_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/internal/testutil"
)

// The acceptance tests of issue 3 in a 2-host lab: 1 GiB of mixed traffic
// over AF_XDP and kernel UDP, the same under loss injected by the XDP
// dispatcher's fault map, and the error paths (bad rkey, missing RECV,
// vanished peer) over AF_XDP. They need root (labtest skips without it).

// e2eBufSize makes mixedTraffic's buffers hold 8 MiB messages: it splits
// a's buffer in halves (source, READ destination) and clamps a message to
// half-16 bytes, so half must be 8 MiB + 16.
const e2eBufSize = 16<<20 + 32

// setRoCEv2Loss makes the XDP dispatcher in front of s's AF_XDP port drop
// ppm/1e6 of the RoCEv2 frames s receives, and returns the dispatcher.
func setRoCEv2Loss(t *testing.T, s *side, ppm uint32) *bpf.Dispatcher {
	t.Helper()
	xp, ok := s.dev.Port().(*dataplane.AFXDPPort)
	if !ok {
		t.Fatalf("device %s runs on %T, not an AF_XDP port", s.dev.Name(), s.dev.Port())
	}
	d := xp.Dispatcher()
	if err := d.SetFault(bpf.ClassRoCEv2, ppm); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Fault(bpf.ClassRoCEv2); err != nil || got != ppm {
		t.Fatalf("fault map reads %d ppm (%v), want %d", got, err, ppm)
	}
	return d
}

// faultDrops is what d's fault injection dropped so far.
func faultDrops(t *testing.T, d *bpf.Dispatcher) uint64 {
	t.Helper()
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c[bpf.ClassRoCEv2].FaultDrop
}

// TestE2ELabMixed moves mixed traffic (WRITE + READ back, SEND/RECV,
// FETCH_ADD; messages of 1 B to 8 MiB, every byte compared) between two
// lab hosts. Loss is injected on both hosts, so requests and responses
// (ACKs, READ responses, atomic ACKs) are lost alike.
//
// Every run moves 1 GiB, as the issue asks. Times measured on the 2-core
// build machine (go test, no race), after the requester's window learned to
// shrink on loss: 0 % 4.6 s over AF_XDP (243 MB/s) and 1.5 s over kernel
// UDP; 1 % 20 s; 5 % about 3 min (most of it READ responses streamed again
// after a lost one: the responder has no window of its own). The whole test
// takes about 4 minutes. Under -short every run moves 64 MiB.
func TestE2ELabMixed(t *testing.T) {
	testutil.Exclusive(t) // hours of CPU otherwise starve rate-measuring tests elsewhere
	cases := []struct {
		transport dataplane.Transport
		lossPPM   uint32
		total     int
	}{
		{dataplane.TransportAFXDP, 0, 1 << 30},
		{dataplane.TransportAFXDP, 10_000, 1 << 30},
		{dataplane.TransportAFXDP, 50_000, 1 << 30},
		{dataplane.TransportUDP, 0, 1 << 30},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/loss%dppm", c.transport, c.lossPPM), func(t *testing.T) {
			total, o := c.total, pairOptions{bufSize: e2eBufSize}
			if testing.Short() {
				total = min(total, 64<<20)
			}
			if raceEnabled {
				// mixedTraffic compares b's memory, which b's engine wrote,
				// after a completion on a: the ordering runs through the
				// kernel (AF_XDP, UDP), which the race detector cannot see,
				// so it reports every such read. The engines' own
				// synchronization is raced over the in-memory network
				// (TestMixedTrafficUnderLoss).
				t.Skip("race detector: the lab's ordering runs through the kernel, where the detector cannot see it")
			}
			_, a, b := labPair(t, c.transport, o)
			var disps []*bpf.Dispatcher
			if c.transport == dataplane.TransportAFXDP {
				disps = []*bpf.Dispatcher{setRoCEv2Loss(t, a, c.lossPPM), setRoCEv2Loss(t, b, c.lossPPM)}
			}
			start := time.Now()
			reqs := mixedTraffic(t, a, b, total, 8<<20, uint64(c.lossPPM)+3)
			took := time.Since(start)
			sa, sb := a.dev.Stats(), b.dev.Stats()
			var drops [2]uint64
			for i, d := range disps {
				drops[i] = faultDrops(t, d)
			}
			t.Logf("%s, %d ppm loss: %d MiB in %d requests in %v (%.1f MB/s); requester: tx %d rx %d packets, retransmits %d, timeouts %d, seq NAKs rcvd %d; responder: seq NAKs sent %d, duplicates %d; fault drops at requester %d, at responder %d",
				c.transport, c.lossPPM, total>>20, reqs, took.Round(time.Millisecond), float64(total)/took.Seconds()/1e6,
				sa.TxPackets.Load(), sa.RxPackets.Load(), sa.Retransmits.Load(), sa.Timeouts.Load(), sa.SeqNAKsRcvd.Load(),
				sb.SeqNAKsSent.Load(), sb.DuplicateRequests.Load(), drops[0], drops[1])
			if c.lossPPM > 0 {
				if drops[0] == 0 || drops[1] == 0 {
					t.Errorf("the fault map dropped %d frames at the requester and %d at the responder; want both non-zero", drops[0], drops[1])
				}
				if sa.Retransmits.Load() == 0 {
					t.Error("no retransmissions under loss")
				}
			} else if sa.Retransmits.Load() != 0 || sa.Timeouts.Load() != 0 {
				// Not an error on a shared machine, but worth seeing.
				t.Logf("retransmissions without injected loss: %d (timeouts %d)", sa.Retransmits.Load(), sa.Timeouts.Load())
			}
		})
	}
}
