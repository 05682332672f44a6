package bpf

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/opennetworks/onetdp/internal/testutil"
)

// FuzzECNMarker runs arbitrary frames through a marker that marks every
// ECT packet: the program must return TCNext, keep the length and change
// nothing but the ECN field (ECT to CE) and, for IPv4, the header checksum,
// which must stay consistent.
func FuzzECNMarker(f *testing.F) {
	testutil.RequireRoot(f)
	for _, v6 := range []bool{false, true} {
		for _, vlan := range []uint16{0, 0x8100} {
			for ecn := uint8(0); ecn < 4; ecn++ {
				f.Add(ecnFrame(v6, vlan, ecn, 20))
			}
		}
	}
	f.Add(buildFrame(testFrame{src: testSrc4, dst: testDst4, ipOptions: 40, ecn: 1, payload: make([]byte, 8)}))
	f.Add(ecnFrame(false, 0x8100, 2, 10)[:18+10])
	m := loadMarker(f, alwaysMark)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > maxTestRunFrame {
			frame = frame[:maxTestRunFrame]
		}
		before := mustMarkerCounters(t, m)
		act, out, err := m.TestRun(frame)
		if err != nil {
			// The kernel refuses short frames and IP EtherTypes without
			// room for the IP header; the program did not run.
			if after := mustMarkerCounters(t, m); after != before {
				t.Fatalf("counters changed on a refused frame: %+v -> %+v", before, after)
			}
			return
		}
		if act != TCNext {
			t.Fatalf("action %#x", act)
		}
		after := mustMarkerCounters(t, m)
		if after.Packets != before.Packets+1 {
			t.Fatalf("packets %d -> %d", before.Packets, after.Packets)
		}
		if bytes.Equal(out, frame) {
			if after.CEMarked != before.CEMarked {
				t.Fatal("CEMarked counted but the frame is unchanged")
			}
			return
		}
		if after.CEMarked != before.CEMarked+1 {
			t.Fatalf("frame changed without a CE mark counted: %+v -> %+v", before, after)
		}
		in := frame[l3Offset(frame)]
		if v := in >> 4; v != 4 && v != 6 {
			t.Fatalf("marked a frame with IP version %d", v)
		}
		if e := frameECN(frame); e != 1 && e != 2 {
			t.Fatalf("marked a frame with ECN %d", e)
		}
		if in>>4 == 4 {
			off := l3Offset(frame)
			// The checksum changes by exactly the TOS change (RFC 1624),
			// so a header valid before is valid after.
			if binary.BigEndian.Uint16(frame[off+10:]) == ipv4HeaderChecksum(frame, off) {
				checkMarked(t, frame, out)
			} else if out[off+1] != frame[off+1]|3 {
				t.Fatal("TOS not marked CE")
			}
			return
		}
		checkMarked(t, frame, out)
	})
}
