package rocev2_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/internal/nsenter"
	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2/wire"
)

// The wire test of issue 3: tshark captures what two engines send each
// other over AF_XDP in a lab, and must decode every packet as RoCEv2 with
// the opcodes, QPs and PSNs the engines used and without a warning; the
// test checks every captured frame's ICRC itself (tshark does not).
//
// Where to capture: an AF_XDP socket in copy mode transmits through
// __dev_direct_xmit, which skips the packet taps, and a frame that XDP
// redirects into a socket never reaches the receiving interface's taps: a
// capture on a host's eth0 sees none of the engines' packets (measured: 0
// frames). So the test builds a 3-host lab, whose hosts hang off a bridge
// in the switch namespace, and captures on h0's switch port p0, which every
// frame between h0 and h1 crosses in one direction or the other.
//
// switchedLabPair is labPair in that 3-host bridged lab.
func switchedLabPair(t *testing.T, o pairOptions) (*lab.Lab, *side, *side) {
	t.Helper()
	l, a, b := labPairWith(t, dataplane.TransportAFXDP, o, lab.Options{Hosts: 3}, false)
	if !l.Switched {
		t.Fatalf("lab %s with 3 hosts is not switched", l.Name)
	}
	return l, a, b
}

// capture is a running tshark whose classic pcap output (-w -) the test
// reads as it comes, so that it can tell when frames are really being
// captured: tshark prints "Capturing on" up to a second before the first
// frame reaches its file (measured here: a burst sent 300 ms after that
// line was missing from the capture, one sent after 1 s was there).
type capture struct {
	netns  string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{} // closed when stdout and stderr are drained

	mu  sync.Mutex
	raw bytes.Buffer // the pcap stream so far
	log bytes.Buffer // tshark's stderr
}

// startCapture runs tshark on interface ifname of the namespace at netns,
// capturing UDP port 4791 as classic pcap to its standard output, and
// returns once tshark says it is capturing. t.Cleanup stops it.
func startCapture(t *testing.T, tshark, netns, ifname string) *capture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c := &capture{netns: netns, cancel: cancel, done: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, tshark, "-i", ifname, "-F", "pcap", "-w", "-", "-f", "udp port 4791")
	stdout, err1 := c.cmd.StdoutPipe()
	stderr, err2 := c.cmd.StderrPipe()
	if err := errors.Join(err1, err2); err != nil {
		cancel()
		t.Fatal(err)
	}
	// A child inherits the network namespace of the thread that forks it.
	if err := nsenter.DoPath(netns, c.cmd.Start); err != nil {
		cancel()
		t.Fatalf("start tshark in %s: %v", netns, err)
	}
	ready := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			c.mu.Lock()
			c.log.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			if !seen && strings.HasPrefix(sc.Text(), "Capturing on") {
				seen = true
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := stdout.Read(buf)
			c.mu.Lock()
			c.raw.Write(buf[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { wg.Wait(); close(c.done) }()
	t.Cleanup(func() { c.stop(t) })
	select {
	case <-ready:
	case <-c.done:
		c.stop(t)
		t.Fatalf("tshark in %s ended before capturing: %s", netns, c.stderr())
	case <-time.After(30 * time.Second):
		c.stop(t)
		t.Fatalf("tshark in %s did not start capturing within 30 s", netns)
	}
	return c
}

func (c *capture) stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

// has reports whether a frame captured so far is a RoCEv2 packet for
// which match is true.
func (c *capture) has(match func(*wire.Packet) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	fr, _, _ := testutil.ReadPCAPPrefix(c.raw.Bytes())
	var p wire.Packet
	for _, f := range fr {
		if decodeFrame(f, &p) && match(&p) {
			return true
		}
	}
	return false
}

// decodeFrame decodes the RoCEv2 packet in an Ethernet/IPv4/UDP frame.
func decodeFrame(f []byte, p *wire.Packet) bool {
	ip := f[min(len(f), dataplane.EthHeaderLen):]
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return false
	}
	ihl, total := int(ip[0]&15)*4, int(binary.BigEndian.Uint16(ip[2:]))
	if total > len(ip) || ihl+8 > total {
		return false
	}
	return wire.Decode(ip[ihl+8:total], p) == nil
}

// syncCapture sends 1-byte probe WRITEs from pa to pb until the capture
// holds one of them, and returns how many it sent. Once the capture holds
// a frame, it holds every frame that crossed the interface before it.
func syncCapture(t *testing.T, c *capture, pa, pb *side) int {
	t.Helper()
	attr, err := pa.qp.Query()
	if err != nil {
		t.Fatal(err)
	}
	first := attr.SQPSN
	for probes, deadline := 0, time.Now().Add(20*time.Second); ; probes++ {
		if c.has(func(p *wire.Packet) bool { return p.DestQP == pb.qp.QPN() && wire.PSNDiff(p.PSN, first) >= 0 }) {
			return probes
		}
		if time.Now().After(deadline) {
			t.Fatalf("tshark captured none of %d probe writes in 20 s: %s", probes, c.stderr())
		}
		post(t, pa.qp, rdma.SendWR{ID: uint64(probes), Opcode: rdma.WRRDMAWrite, SGL: sge(pa, 0, 1), RemoteAddr: pb.mr.Addr(), RKey: pb.mr.RKey(), Signaled: true})
		if wc := waitWC(t, pa.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess {
			t.Fatalf("probe write: %+v", wc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends tshark with SIGINT, waits for it and returns the pcap stream.
// It may be called more than once.
func (c *capture) stop(t *testing.T) []byte {
	if c.cmd.ProcessState == nil {
		defer c.cancel()
		c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
			if err := c.cmd.Wait(); err != nil {
				t.Errorf("tshark in %s: %v\n%s", c.netns, err, c.stderr())
			}
		case <-time.After(30 * time.Second):
			c.cancel()
			<-c.done
			c.cmd.Wait()
			t.Errorf("tshark in %s did not stop on SIGINT within 30 s", c.netns)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.raw.Bytes())
}

// captured is one packet as tshark decoded it.
type captured struct {
	frame             int
	src               string
	sport, dport      int
	opcode            int // -1 when tshark found no BTH
	destQP, psn       uint32
	aethKind          int // AETH syndrome opcode: 0 ACK, 1 RNR NAK, 3 NAK; -1 without AETH
	expert, malformed string
}

// tsharkFields runs tshark over a capture file and parses one captured per
// frame.
func tsharkFields(t *testing.T, path string) []captured {
	t.Helper()
	fields := []string{"frame.number", "ip.src", "udp.srcport", "udp.dstport", "infiniband.bth.opcode",
		"infiniband.bth.destqp", "infiniband.bth.psn", "infiniband.aeth.syndrome.opcode", "_ws.expert.message", "_ws.malformed"}
	// Heuristic dissectors of RDMA payloads guess at our arbitrary bytes
	// and call them malformed when the guess fails; they judge the payload,
	// not our framing (see wire's tshark test).
	rows := testutil.TSharkFields(t, path, fields, testutil.DisableRDMAPayloadDissectors()...)
	var cs []captured
	num := func(s string, base int) int64 {
		if s == "" {
			return -1
		}
		v, err := strconv.ParseInt(strings.TrimPrefix(s, "0x"), base, 64)
		if err != nil {
			t.Fatalf("%s: tshark field %q: %v", path, s, err)
		}
		return v
	}
	for _, f := range rows {
		cs = append(cs, captured{
			frame: int(num(f[0], 10)), src: f[1],
			sport: int(num(f[2], 10)), dport: int(num(f[3], 10)), opcode: int(num(f[4], 10)),
			destQP: uint32(num(f[5], 16)), psn: uint32(num(f[6], 10)), aethKind: int(num(f[7], 10)),
			expert: f[8], malformed: f[9],
		})
	}
	return cs
}

func TestCaptureLabDecodesInTshark(t *testing.T) {
	tshark := testutil.RequireTShark(t, "cross-check the engine's packets")
	l, a, b := switchedLabPair(t, pairOptions{mtu: rdma.MTU1024, rnrRetry: 7})
	if !a.dev.Caps().TxSrcPort {
		t.Fatalf("AF_XDP port cannot choose UDP source ports (%+v)", a.dev.Caps())
	}
	// A second pair sends probe WRITEs before and after the exchange until
	// the capture holds one: the first tells that tshark really captures,
	// the last that every frame of the exchange reached the capture (tshark
	// delivers frames in blocks, and loses the last block when stopped too
	// soon: measured here, a burst 100 ms before SIGINT went missing).
	pa, pb := pairOn(t, a.dev, b.dev, pairOptions{}, 0x800000)
	capt := startCapture(t, tshark, filepath.Join(lab.NetnsDir, lab.SwitchNetns(l.Name)), "p0")
	t.Logf("capturing after %d probe writes", syncCapture(t, capt, pa, pb))
	aFirst := a.psn

	// The operations, one at a time, at path MTU 1024: 100 bytes make one
	// packet (ONLY), 3000 bytes three (FIRST, MIDDLE, LAST).
	fill(a.buf[:8192], 0x42)
	for i := range 6 {
		postRecv(t, b.qp, rdma.RecvWR{ID: uint64(100 + i), SGL: sge(b, 65536*(i+1), 4096)})
	}
	wb := b.mr.Addr()
	ops := []rdma.SendWR{
		{Opcode: rdma.WRSend, SGL: sge(a, 0, 100)},
		{Opcode: rdma.WRSend, SGL: sge(a, 0, 3000)},
		{Opcode: rdma.WRSendWithImm, Imm: 1, SGL: sge(a, 0, 100)},
		{Opcode: rdma.WRSendWithImm, Imm: 2, SGL: sge(a, 0, 3000)},
		{Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 100), RemoteAddr: wb, RKey: b.mr.RKey()},
		{Opcode: rdma.WRRDMAWrite, SGL: sge(a, 0, 3000), RemoteAddr: wb + 4096, RKey: b.mr.RKey()},
		{Opcode: rdma.WRRDMAWriteWithImm, Imm: 3, SGL: sge(a, 0, 100), RemoteAddr: wb + 8192, RKey: b.mr.RKey()},
		{Opcode: rdma.WRRDMAWriteWithImm, Imm: 4, SGL: sge(a, 0, 3000), RemoteAddr: wb + 12288, RKey: b.mr.RKey()},
		{Opcode: rdma.WRRDMARead, SGL: sge(a, 16384, 100), RemoteAddr: wb, RKey: b.mr.RKey()},
		{Opcode: rdma.WRRDMARead, SGL: sge(a, 20480, 3000), RemoteAddr: wb + 4096, RKey: b.mr.RKey()},
		{Opcode: rdma.WRAtomicCmpAndSwp, SGL: sge(a, 32768, 8), RemoteAddr: wb + 40960, RKey: b.mr.RKey(), CompareAdd: 0, Swap: 9},
		{Opcode: rdma.WRAtomicFetchAndAdd, SGL: sge(a, 32776, 8), RemoteAddr: wb + 40960, RKey: b.mr.RKey(), CompareAdd: 5},
	}
	for i, wr := range ops {
		wr.ID, wr.Signaled = uint64(i+1), true
		post(t, a.qp, wr)
		if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess || wc.ID != wr.ID {
			t.Fatalf("%s: completion %+v", wr.Opcode, wc)
		}
	}
	if wcs := waitWC(t, b.rcq, 6, 5*time.Second); slices.ContainsFunc(wcs, func(wc rdma.WC) bool { return wc.Status != rdma.WCSuccess }) {
		t.Fatalf("receive completions %+v", wcs)
	}
	// The atomics' original values (read on a: b's engine wrote b's
	// memory, and the race detector cannot see the ordering that the
	// network gives).
	if !bytes.Equal(a.buf[20480:23480], a.buf[:3000]) || binary.LittleEndian.Uint64(a.buf[32768:]) != 0 || binary.LittleEndian.Uint64(a.buf[32776:]) != 9 {
		t.Fatal("READ or atomics returned the wrong data")
	}
	// An RNR NAK: a SEND with no receive posted, then the receive.
	rnr := a.dev.Stats().RNRNAKsRcvd.Load()
	post(t, a.qp, rdma.SendWR{ID: 50, Opcode: rdma.WRSend, SGL: sge(a, 0, 64), Signaled: true})
	for deadline := time.Now().Add(5 * time.Second); a.dev.Stats().RNRNAKsRcvd.Load() == rnr; time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatal("no RNR NAK within 5 s")
		}
	}
	postRecv(t, b.qp, rdma.RecvWR{ID: 200, SGL: sge(b, 0, 64)})
	if wc := waitWC(t, a.scq, 1, 5*time.Second)[0]; wc.Status != rdma.WCSuccess {
		t.Fatalf("send after RNR: %+v", wc)
	}
	attrA, _ := a.qp.Query()
	aEnd := attrA.SQPSN // one past a's last PSN
	t.Logf("exchange captured after %d probe writes", syncCapture(t, capt, pa, pb))
	raw := capt.stop(t)
	if t.Failed() {
		t.FailNow()
	}

	// What tshark saw, and the raw frames for the ICRC.
	path := filepath.Join(t.TempDir(), "p0.pcap")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	fr, lt, err := testutil.ReadPCAP(raw)
	if err != nil {
		t.Fatal(err)
	}
	if lt != testutil.LinkTypeEthernet {
		t.Fatalf("link type %d, want 1 (Ethernet)", lt)
	}
	pkts := tsharkFields(t, path)
	if len(pkts) != len(fr) {
		t.Fatalf("tshark decoded %d frames, the capture holds %d", len(pkts), len(fr))
	}
	for i, f := range fr {
		if len(f) < dataplane.EthHeaderLen || !wire.CheckICRC(f[dataplane.EthHeaderLen:]) {
			t.Errorf("frame %d (%s opcode %d PSN %d): ICRC does not check", i+1, pkts[i].src, pkts[i].opcode, pkts[i].psn)
		}
	}
	qpns := map[uint32]string{a.qp.QPN(): "a", b.qp.QPN(): "b", pa.qp.QPN(): "probe a", pb.qp.QPN(): "probe b"}
	seen := map[int]int{}
	rnrNAKs := 0
	covered := map[uint32]bool{} // PSNs of requests and READ responses
	for _, c := range pkts {
		where := fmt.Sprintf("frame %d (%s:%d opcode %d QP %#x PSN %#x)", c.frame, c.src, c.sport, c.opcode, c.destQP, c.psn)
		if c.opcode < 0 {
			t.Errorf("%s: no BTH: tshark did not decode it as RoCEv2", where)
			continue
		}
		if c.expert != "" || c.malformed != "" {
			t.Errorf("%s: tshark says %q %q", where, c.expert, c.malformed)
		}
		if c.dport != wire.UDPPort {
			t.Errorf("%s: UDP destination port %d, want %d", where, c.dport, wire.UDPPort)
		}
		if c.sport < 0xC000 || c.sport > 0xFFFF {
			t.Errorf("%s: UDP source port %#x outside 0xC000-0xFFFF", where, c.sport)
		}
		if who, ok := qpns[c.destQP]; !ok {
			t.Errorf("%s: destination QP %#x is none of ours (%v)", where, c.destQP, qpns)
			continue
		} else if strings.HasPrefix(who, "probe") {
			continue
		}
		op := wire.OpCode(c.opcode)
		seen[c.opcode]++
		if op == wire.OpAcknowledge && c.aethKind == 1 {
			rnrNAKs++
		}
		// Every packet of this exchange carries a PSN of a's send queue:
		// requests their own, responses and ACKs the request's.
		if d := wire.PSNDiff(c.psn, aFirst); d < 0 || d >= wire.PSNDiff(aEnd, aFirst) {
			t.Errorf("%s: PSN outside a's range [%#x, %#x)", where, aFirst, aEnd)
		}
		if op.IsReadResponse() {
			covered[c.psn] = true
		}
		if op.IsRequest() {
			if c.destQP != b.qp.QPN() {
				t.Errorf("%s: request to QP %#x, want b's %#x", where, c.destQP, b.qp.QPN())
			}
			covered[c.psn] = true
		} else if c.destQP != a.qp.QPN() {
			t.Errorf("%s: response to QP %#x, want a's %#x", where, c.destQP, a.qp.QPN())
		}
	}
	// Every PSN of a's range went on the wire: a request carries it, or
	// (for the later packets of a READ) a READ response.
	for psn := aFirst; psn != aEnd; psn = wire.PSNAdd(psn, 1) {
		if !covered[psn] {
			t.Errorf("no request or READ response with PSN %#x captured", psn)
		}
	}
	for op := wire.OpSendFirst; op <= wire.OpFetchAdd; op++ {
		if seen[int(op)] == 0 {
			t.Errorf("opcode %s (%d) not captured", op, op)
		}
	}
	if rnrNAKs == 0 {
		t.Error("no RNR NAK captured")
	}
	t.Logf("%d frames captured, opcodes of the exchange %v, %d RNR NAKs; every ICRC checked", len(fr), seen, rnrNAKs)
}
