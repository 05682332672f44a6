package bpf

import (
	"testing"

	"github.com/opennetworks/onetdp/internal/testutil"
)

// maxTestRunFrame keeps fuzz inputs below what BPF_PROG_TEST_RUN accepts in
// the linear buffer for a program that is not frags-aware (a page less
// headroom and tailroom).
const maxTestRunFrame = 3000

func fuzzSeeds() [][]byte {
	seeds := [][]byte{
		roceFrame(0x123456, 32),
		buildFrame(testFrame{src: testSrc4, dst: testDst4, sport: 1, dport: testOnetPort, payload: make([]byte, 20)}),
		buildFrame(testFrame{vlanTPID: 0x8100, src: testSrc6, dst: testDst6, extHdrs: 2, sport: 1, dport: 4791, payload: bth(9, 1, 8)}),
		buildFrame(testFrame{src: testSrc4, dst: testDst4, ipOptions: 12, ecn: 3, sport: 1, dport: 4791, payload: bth(9, 1, 8)}),
	}
	for _, f := range malformedFrames() {
		seeds = append(seeds, f)
	}
	return seeds
}

func FuzzDispatcher(f *testing.F) {
	testutil.RequireRoot(f)
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	d := loadTest(f, DispatcherOptions{OnetPort: testOnetPort})
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > maxTestRunFrame {
			frame = frame[:maxTestRunFrame]
		}
		before := mustCounters(t, d)
		act, err := d.TestRun(frame)
		if len(frame) < 14 {
			if err == nil {
				t.Fatalf("test run of a %d-byte frame succeeded; the kernel should refuse it", len(frame))
			}
			return
		}
		if err != nil {
			t.Fatalf("test run: %v", err)
		}
		// No faults set and no socket registered: every frame is passed.
		if act != XDPPass {
			t.Fatalf("action = %d, want XDP_PASS", act)
		}
		after := mustCounters(t, d)
		var packets, bytes, parseErr uint64
		for c := Class(0); c < NumClasses; c++ {
			dp := after[c].Packets - before[c].Packets
			packets += dp
			bytes += after[c].Bytes - before[c].Bytes
			pe := after[c].ParseErr - before[c].ParseErr
			parseErr += pe
			if pe != 0 && c != ClassOther {
				t.Errorf("parse error counted in %s", c)
			}
			if fd := after[c].FaultDrop - before[c].FaultDrop; fd != 0 {
				t.Errorf("%d fault drops in %s with no fault set", fd, c)
			}
			if rf := after[c].RedirectFail - before[c].RedirectFail; c != ClassOther && rf != dp {
				t.Errorf("%s: %d redirect failures for %d packets with no socket", c, rf, dp)
			}
		}
		if packets != 1 || bytes != uint64(len(frame)) || parseErr > 1 {
			t.Fatalf("one %d-byte frame counted as %d packets, %d bytes, %d parse errors", len(frame), packets, bytes, parseErr)
		}
	})
}
