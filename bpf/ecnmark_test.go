package bpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/opennetworks/onetdp/internal/testutil"
)

// loadMarker loads a fresh ECN marker closed at the end of the test.
func loadMarker(tb testing.TB, opts ECNMarkerOptions) *ECNMarker {
	tb.Helper()
	testutil.RequireRoot(tb)
	m, err := LoadECNMarker(opts)
	if err != nil {
		tb.Fatalf("load ecn marker: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("close ecn marker: %v", err)
		}
	})
	return m
}

func mustMarkerCounters(tb testing.TB, m *ECNMarker) ECNCounters {
	tb.Helper()
	c, err := m.Counters()
	if err != nil {
		tb.Fatalf("ecn marker counters: %v", err)
	}
	return c
}

func mustMark(tb testing.TB, m *ECNMarker, frame []byte) []byte {
	tb.Helper()
	act, out, err := m.TestRun(frame)
	if err != nil {
		tb.Fatalf("test run: %v", err)
	}
	if act != TCNext {
		tb.Fatalf("action = %#x, want TCNext (%#x)", act, TCNext)
	}
	if len(out) != len(frame) {
		tb.Fatalf("output frame is %d bytes, input %d", len(out), len(frame))
	}
	return out
}

// runRepeat runs the program repeat times on one skb (the kernel does not
// reset it between runs, so a marked ECT frame is CE on the next run).
func runRepeat(tb testing.TB, m *ECNMarker, frame []byte, repeat uint32) {
	tb.Helper()
	act, err := m.Program().Run(&ebpf.RunOptions{Data: frame, Repeat: repeat})
	if err != nil {
		tb.Fatalf("run x%d: %v", repeat, err)
	}
	if act != TCNext {
		tb.Fatalf("action = %#x, want TCNext", act)
	}
}

// l3Offset returns the offset of the IP header (after one optional tag).
func l3Offset(frame []byte) int {
	if t := binary.BigEndian.Uint16(frame[12:]); t == 0x8100 || t == 0x88a8 {
		return 18
	}
	return 14
}

// frameECN returns the ECN field of an IPv4 or IPv6 frame from buildFrame.
func frameECN(frame []byte) uint8 {
	off := l3Offset(frame)
	if frame[off]>>4 == 4 {
		return frame[off+1] & 3
	}
	return (frame[off+1] >> 4) & 3
}

// ipv4HeaderChecksum computes the reference checksum of the IPv4 header at
// off (with its checksum field taken as zero).
func ipv4HeaderChecksum(frame []byte, off int) uint16 {
	hlen := int(frame[off]&0x0f) * 4
	var sum uint32
	for i := 0; i < hlen; i += 2 {
		if i == 10 {
			continue
		}
		sum += uint32(binary.BigEndian.Uint16(frame[off+i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// checkMarked checks that out is in with CE set and, for IPv4, a correct
// header checksum; nothing else may change.
func checkMarked(t *testing.T, in, out []byte) {
	t.Helper()
	if got := frameECN(out); got != 3 {
		t.Fatalf("ECN after marking = %d, want 3 (CE)", got)
	}
	off := l3Offset(in)
	want := append([]byte(nil), in...)
	if in[off]>>4 == 4 {
		want[off+1] |= 3
		binary.BigEndian.PutUint16(want[off+10:], ipv4HeaderChecksum(want, off))
		if got, ref := binary.BigEndian.Uint16(out[off+10:]), ipv4HeaderChecksum(out, off); got != ref {
			t.Errorf("ipv4 header checksum %#04x, reference %#04x", got, ref)
		}
	} else {
		want[off+1] |= 0x30
	}
	if !bytes.Equal(out, want) {
		t.Errorf("marked frame\n got %x\nwant %x", out, want)
	}
}

func ecnFrame(v6 bool, vlan uint16, ecn uint8, n int) []byte {
	f := testFrame{vlanTPID: vlan, src: testSrc4, dst: testDst4, ecn: ecn, sport: 5000, dport: 6000, payload: make([]byte, n)}
	if v6 {
		f.src, f.dst = testSrc6, testDst6
	}
	return buildFrame(f)
}

// alwaysMark: Kmax 0, so every IP packet is at or above Kmax.
var alwaysMark = ECNMarkerOptions{RateBps: 10_000_000, KminBytes: 0, KmaxBytes: 0, PmaxPPM: 100_000}

func TestECNMarkAboveKmax(t *testing.T) {
	opts4 := testFrame{src: testSrc4, dst: testDst4, ipOptions: 12, ecn: 2, sport: 1, dport: 2, payload: make([]byte, 30)}
	cases := []struct {
		name  string
		frame []byte
	}{
		{"ipv4 ect0", ecnFrame(false, 0, 2, 100)},
		{"ipv4 ect1", ecnFrame(false, 0, 1, 100)},
		{"ipv4 ect0 with options", buildFrame(opts4)},
		{"ipv4 ect0 tos 0xb8", func() []byte {
			f := ecnFrame(false, 0, 2, 10)
			f[15] |= 0xb8 // DSCP EF must survive
			binary.BigEndian.PutUint16(f[24:], ipv4HeaderChecksum(f, 14))
			return f
		}()},
		{"ipv4 ect0 checksum carry", func() []byte {
			// A header whose checksum is 0x0000 or near it exercises the fold.
			f := ecnFrame(false, 0, 2, 10)
			for id := 0; id < 0x10000; id++ {
				binary.BigEndian.PutUint16(f[18:], uint16(id))
				c := ipv4HeaderChecksum(f, 14)
				binary.BigEndian.PutUint16(f[24:], c)
				if c <= 2 {
					break
				}
			}
			return f
		}()},
		{"ipv6 ect0", ecnFrame(true, 0, 2, 100)},
		{"ipv6 ect1", ecnFrame(true, 0, 1, 100)},
		{"vlan ipv4 ect0", ecnFrame(false, 0x8100, 2, 100)},
		{"vlan 802.1ad ipv6 ect1", ecnFrame(true, 0x88a8, 1, 100)},
		{"ipv4 fragment ect0", buildFrame(testFrame{src: testSrc4, dst: testDst4, ecn: 2, fragOff: 0x2000, payload: make([]byte, 8)})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := loadMarker(t, alwaysMark)
			in := append([]byte(nil), c.frame...)
			out := mustMark(t, m, c.frame)
			if !bytes.Equal(c.frame, in) {
				t.Fatal("TestRun changed its input")
			}
			checkMarked(t, in, out)
			want := ECNCounters{Packets: 1, Bytes: uint64(len(in)), ECT: 1, CEMarked: 1}
			if got := mustMarkerCounters(t, m); got != want {
				t.Errorf("counters = %+v, want %+v", got, want)
			}
		})
	}
}

func TestECNNeverMarksNotECT(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, vlan := range []uint16{0, 0x8100} {
			frame := ecnFrame(v6, vlan, 0, 200)
			m := loadMarker(t, alwaysMark)
			for i := 0; i < 10; i++ {
				if out := mustMark(t, m, frame); !bytes.Equal(out, frame) {
					t.Fatalf("v6=%v vlan=%#x: Not-ECT frame modified\n got %x\nwant %x", v6, vlan, out, frame)
				}
			}
			runRepeat(t, m, frame, 1000)
			want := ECNCounters{Packets: 1010, Bytes: 1010 * uint64(len(frame)), NotECTOver: 1010}
			if got := mustMarkerCounters(t, m); got != want {
				t.Errorf("v6=%v vlan=%#x: counters = %+v, want %+v", v6, vlan, got, want)
			}
		}
	}
}

func TestECNAlreadyCE(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		frame := ecnFrame(v6, 0, 3, 50)
		m := loadMarker(t, alwaysMark)
		if out := mustMark(t, m, frame); !bytes.Equal(out, frame) {
			t.Fatalf("v6=%v: CE frame modified", v6)
		}
		want := ECNCounters{Packets: 1, Bytes: uint64(len(frame)), AlreadyCE: 1}
		if got := mustMarkerCounters(t, m); got != want {
			t.Errorf("v6=%v: counters = %+v, want %+v", v6, got, want)
		}
	}
}

func TestECNMalformedPassUnmodified(t *testing.T) {
	v4 := ecnFrame(false, 0, 2, 40)
	v6 := ecnFrame(true, 0, 2, 40)
	mut := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	arp := append(make([]byte, 12), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	frames := map[string][]byte{
		"arp":                      arp,
		"vlan then truncated ipv6": ecnFrame(true, 0x8100, 2, 10)[:18+39],
		"ipv4 ihl 4":               mut(v4, func(b []byte) []byte { b[14] = 0x44; return b }),
		"ipv4 version 6 in ipv4":   mut(v4, func(b []byte) []byte { b[14] = 0x65; return b }),
		"ipv4 ihl 15 beyond frame": mut(v4, func(b []byte) []byte { b[14] = 0x4f; return b[:14+40] }),
		"ipv6 version 4":           mut(v6, func(b []byte) []byte { b[14] = 0x40 | b[14]&0x0f; return b }),
		"vlan tag truncated":       ecnFrame(false, 0x8100, 2, 10)[:16],
		"vlan then truncated ipv4": ecnFrame(false, 0x8100, 2, 10)[:18+10],
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			m := loadMarker(t, alwaysMark)
			if out := mustMark(t, m, frame); !bytes.Equal(out, frame) {
				t.Fatalf("frame modified\n got %x\nwant %x", out, frame)
			}
			want := ECNCounters{Packets: 1, Bytes: uint64(len(frame)), ParseSkipped: 1}
			if got := mustMarkerCounters(t, m); got != want {
				t.Errorf("counters = %+v, want %+v", got, want)
			}
		})
	}
}

func TestECNShortIPRejectedByKernel(t *testing.T) {
	// For an skb, BPF_PROG_TEST_RUN refuses a frame whose EtherType is IPv4
	// or IPv6 but whose IP header does not fit, so such frames are tested
	// behind a VLAN tag (TestECNMalformedPassUnmodified); the stack never
	// transmits them either.
	m := loadMarker(t, alwaysMark)
	v4, v6 := ecnFrame(false, 0, 2, 40), ecnFrame(true, 0, 2, 40)
	for _, f := range [][]byte{v4[:14], v4[:14+19], v6[:14+39]} {
		if _, _, err := m.TestRun(f); err == nil {
			t.Errorf("test run of a %d-byte frame succeeded, want an error from the kernel", len(f))
		}
	}
	if got := mustMarkerCounters(t, m); got != (ECNCounters{}) {
		t.Errorf("counters = %+v, want zero", got)
	}
}

func TestECNBelowKmin(t *testing.T) {
	frame := ecnFrame(false, 0, 2, 100)
	// At the highest rate the queue drains between runs: it holds exactly
	// the current frame, which is below Kmin.
	notECT6 := ecnFrame(true, 0, 0, 100)
	m := loadMarker(t, ECNMarkerOptions{RateBps: MaxECNRateBps, KminBytes: uint32(max(len(frame), len(notECT6))) + 1, KmaxBytes: 10_000, PmaxPPM: PPMScale})
	for i := 0; i < 200; i++ {
		if out := mustMark(t, m, frame); !bytes.Equal(out, frame) {
			t.Fatalf("run %d: frame below Kmin modified", i)
		}
	}
	runRepeat(t, m, frame, 10_000)
	runRepeat(t, m, notECT6, 10_000)
	c := mustMarkerCounters(t, m)
	if c.CEMarked != 0 || c.NotECTOver != 0 || c.ECT != 10_200 || c.Packets != 20_200 {
		t.Errorf("counters = %+v, want 10200 ECT, 20200 packets, no marks", c)
	}
	if q, err := m.QueueBytes(); err != nil || q > uint64(len(frame)) {
		t.Errorf("queue = %d (%v), want <= %d", q, err, len(frame))
	}
}

func TestECNQueueGrowsAndDrains(t *testing.T) {
	frame := ecnFrame(false, 0, 0, 1000-14-28) // 1000 bytes, Not-ECT
	if len(frame) != 1000 {
		t.Fatalf("frame is %d bytes", len(frame))
	}
	// 8 kbit/s = 1000 B/s: back-to-back frames pile up.
	slow := ECNMarkerParams{RateBps: 8000, KminBytes: 5000, KmaxBytes: 10_000, PmaxPPM: PPMScale}
	m := loadMarker(t, ECNMarkerOptions{RateBps: slow.RateBps, KminBytes: slow.KminBytes, KmaxBytes: slow.KmaxBytes, PmaxPPM: slow.PmaxPPM})
	runRepeat(t, m, frame, 100)
	c := mustMarkerCounters(t, m)
	// Frames 1-4 are below Kmin, 5-9 between, 10-100 at or above Kmax.
	if c.NotECTOver < 91 || c.NotECTOver > 96 || c.CEMarked != 0 {
		t.Errorf("after 100 back-to-back frames: %+v, want 91..96 would-mark, no CE", c)
	}
	q, err := m.QueueBytes()
	if err != nil {
		t.Fatal(err)
	}
	if q < 99_000 || q > 100_000 {
		t.Errorf("queue = %d bytes, want about 100000", q)
	}
	// The queue is far above Kmax: every ECT frame is marked.
	ect := ecnFrame(false, 0, 2, 1000-14-28)
	for i := 0; i < 20; i++ {
		checkMarked(t, ect, mustMark(t, m, ect))
	}

	// Drain at 8 Mbit/s = 1 MB/s: 120 KB take 120 ms.
	fast := slow
	fast.RateBps = 8_000_000
	if err := m.SetParams(fast); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	q0, _ := m.QueueBytes()
	time.Sleep(30 * time.Millisecond)
	q1, _ := m.QueueBytes()
	el := time.Since(start)
	if drained := float64(q0 - q1); drained < 25_000 || drained > float64(el.Microseconds())+2000 {
		t.Errorf("drained %v bytes in %v at 1 MB/s (queue %d -> %d)", drained, el, q0, q1)
	}
	deadline := time.Now().Add(2 * time.Second)
	for q1 > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		q1, _ = m.QueueBytes()
	}
	if q1 != 0 {
		t.Fatalf("queue did not drain: %d bytes", q1)
	}
	before := mustMarkerCounters(t, m)
	if out := mustMark(t, m, ect); !bytes.Equal(out, ect) {
		t.Error("ECT frame marked after the queue drained")
	}
	if after := mustMarkerCounters(t, m); after.CEMarked != before.CEMarked || after.ECT != before.ECT+1 {
		t.Errorf("counters %+v -> %+v", before, after)
	}
}

func TestECNMarkProbability(t *testing.T) {
	ect := ecnFrame(false, 0, 2, 100)
	notECT := ecnFrame(false, 0, 0, 100)
	l := uint32(len(ect))
	// At the top rate the queue is exactly one frame: L, halfway between
	// Kmin 0 and Kmax 2L, so p = Pmax/2 = 20 %.
	m := loadMarker(t, ECNMarkerOptions{RateBps: MaxECNRateBps, KminBytes: 0, KmaxBytes: 2 * l, PmaxPPM: 400_000})
	const n = 3000
	marked := 0
	for i := 0; i < n; i++ {
		out := mustMark(t, m, ect)
		if frameECN(out) == 3 {
			checkMarked(t, ect, out)
			marked++
		} else if !bytes.Equal(out, ect) {
			t.Fatal("unmarked frame modified")
		}
	}
	if f := float64(marked) / n; f < 0.15 || f > 0.25 {
		t.Errorf("marked fraction %.3f of %d ECT frames, want 0.20 +- 0.05", f, n)
	}
	if c := mustMarkerCounters(t, m); c.CEMarked != uint64(marked) || c.ECT != n {
		t.Errorf("counters %+v, want CEMarked %d and ECT %d", c, marked, n)
	}
	const reps = 20_000
	runRepeat(t, m, notECT, reps)
	c := mustMarkerCounters(t, m)
	if f := float64(c.NotECTOver) / reps; f < 0.17 || f > 0.23 {
		t.Errorf("would-mark fraction %.3f of %d Not-ECT frames, want 0.20 +- 0.03", f, reps)
	}
}

func TestECNDisabled(t *testing.T) {
	m := loadMarker(t, alwaysMark)
	p := alwaysMark.Params()
	p.Disabled = true
	if err := m.SetParams(p); err != nil {
		t.Fatal(err)
	}
	frame := ecnFrame(false, 0, 2, 100)
	if out := mustMark(t, m, frame); !bytes.Equal(out, frame) {
		t.Fatal("disabled marker modified a frame")
	}
	want := ECNCounters{Packets: 1, Bytes: uint64(len(frame))}
	if got := mustMarkerCounters(t, m); got != want {
		t.Errorf("counters = %+v, want %+v", got, want)
	}
}

func TestECNParamsValidation(t *testing.T) {
	bad := []ECNMarkerParams{
		{RateBps: 0, KmaxBytes: 10},
		{RateBps: 1000, KmaxBytes: 10},
		{RateBps: MaxECNRateBps + 1, KmaxBytes: 10},
		{RateBps: 1e9, KminBytes: 11, KmaxBytes: 10},
		{RateBps: 1e9, KmaxBytes: 10, PmaxPPM: PPMScale + 1},
	}
	for _, p := range bad {
		if err := p.validate(); !errors.Is(err, ErrInvalidECNParams) {
			t.Errorf("validate(%+v) = %v, want ErrInvalidECNParams", p, err)
		}
	}
	if _, err := LoadECNMarker(ECNMarkerOptions{}); !errors.Is(err, ErrInvalidECNParams) {
		t.Errorf("LoadECNMarker(zero options) = %v, want ErrInvalidECNParams", err)
	}
	for _, bps := range []uint64{minECNRateBps, 10_000_000, 100_000_000_000, MaxECNRateBps} {
		got := float64(rateFP(bps)) / (1 << ecnFPShift) * 8e9 // back to bit/s
		if rel := got/float64(bps) - 1; bps >= 8_000_000 && (rel > 1e-3 || rel < -1e-3) {
			t.Errorf("rateFP(%d) = %v bit/s", bps, got)
		}
		if rateFP(bps) == 0 {
			t.Errorf("rateFP(%d) = 0", bps)
		}
	}
	m := loadMarker(t, alwaysMark)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.TestRun(ecnFrame(false, 0, 2, 10)); !errors.Is(err, ErrClosed) {
		t.Errorf("TestRun after Close = %v, want ErrClosed", err)
	}
}

func TestECNMarkerPinned(t *testing.T) {
	testutil.RequireBPFFS(t)
	dir := filepath.Join("/sys/fs/bpf", testutil.UniqueName("onet-ecn-test-"))
	t.Cleanup(func() {
		if err := UnpinECNMarker(dir); err != nil {
			t.Errorf("unpin: %v", err)
		}
	})
	opts := ECNMarkerOptions{RateBps: 8000, KminBytes: 0, KmaxBytes: 100_000, PmaxPPM: 0, PinDir: dir}
	m, err := LoadECNMarker(opts)
	if err != nil {
		t.Fatal(err)
	}
	frame := ecnFrame(false, 0, 2, 958) // 1000 bytes
	runRepeat(t, m, frame, 10)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// A second load finds the counters and the queue; PmaxPPM 0 and
	// Kmax 100 KB: nothing is marked.
	m2 := loadMarker(t, opts)
	if c := mustMarkerCounters(t, m2); c.Packets != 10 || c.ECT != 10 || c.CEMarked != 0 {
		t.Errorf("counters after re-load = %+v, want 10 ECT packets", c)
	}
	if q, err := m2.QueueBytes(); err != nil || q < 9000 || q > 10_000 {
		t.Errorf("queue after re-load = %d (%v), want about 10000", q, err)
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := UnpinECNMarker(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin dir %s still there after UnpinECNMarker: %v", dir, err)
	}
}

func TestECNQueueConcurrentUpdates(t *testing.T) {
	// Two goroutines (on two CPUs when available) feed the same phantom
	// queue; with the spin lock no enqueue is lost. At 1000 B/s the drain
	// over the run is a few hundred bytes at most.
	frame := ecnFrame(false, 0, 0, 58) // 100 bytes
	m := loadMarker(t, ECNMarkerOptions{RateBps: 8000, KminBytes: 1 << 30, KmaxBytes: 1 << 30})
	const workers, reps = 4, 20_000
	start := time.Now()
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			_, err := m.Program().Run(&ebpf.RunOptions{Data: frame, Repeat: reps})
			errs <- err
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	q, err := m.QueueBytes()
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(workers * reps * len(frame))
	slack := uint64(time.Since(start).Seconds()*1000) + 1000
	if q > want || q+slack < want {
		t.Errorf("queue = %d bytes after %d frames of %d bytes, want %d (-%d)", q, workers*reps, len(frame), want, slack)
	}
}
