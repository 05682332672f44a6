package wire

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/internal/testutil"
)

// TestFramesDecodeInTshark builds a complete Ethernet/IP/UDP frame for
// every golden packet (IPv4 and IPv6, UDP destination port 4791) and checks
// that tshark decodes each as RoCEv2 with the opcode, QP and PSN we put in,
// with no expert warning (malformed packet and the like). tshark does not
// check the ICRC; the other tests here do.
func TestFramesDecodeInTshark(t *testing.T) {
	testutil.RequireTShark(t, "cross-check RoCEv2 decoding")
	specs := []dataplane.FrameSpec{
		{SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
			Src: netip.MustParseAddrPort("198.18.0.1:49152"), Dst: netip.MustParseAddrPort("198.18.0.2:4791"), TOS: 0x02},
		{SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
			Src: netip.MustParseAddrPort("[fd00:198:18::1]:50001"), Dst: netip.MustParseAddrPort("[fd00:198:18::2]:4791"), FlowLabel: 0x12345},
	}
	type sent struct {
		name string
		p    Packet
	}
	var frames [][]byte
	var want []sent
	for _, spec := range specs {
		for _, c := range goldenCases {
			p := c.p
			hl := spec.HeaderLen()
			buf := make([]byte, hl+p.WireLen())
			n, err := Encode(buf[hl:], &p)
			if err != nil {
				t.Fatal(err)
			}
			if err := PutICRCFromParts(spec.Src, spec.Dst, 0, buf[hl:hl+n]); err != nil {
				t.Fatal(err)
			}
			fn, err := dataplane.WriteUDPFrame(buf, &spec, n)
			if err != nil {
				t.Fatal(err)
			}
			if !CheckICRC(buf[dataplane.EthHeaderLen:fn]) {
				t.Fatalf("%s: ICRC of the built frame does not check", c.name)
			}
			frames = append(frames, buf[:fn])
			want = append(want, sent{c.name + "/" + spec.Dst.Addr().String(), p})
		}
	}
	// Control: an RDMA_WRITE_FIRST cut off inside its RETH must be reported
	// malformed, or the absence of warnings above proves nothing.
	{
		spec := specs[0]
		hl := spec.HeaderLen()
		buf := make([]byte, hl+BTHLen+8)
		copy(buf[hl:], unhex(t, goldenCases[6].hex)[:BTHLen+8])
		fn, err := dataplane.WriteUDPFrame(buf, &spec, BTHLen+8)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, buf[:fn])
	}
	path := filepath.Join(t.TempDir(), "rocev2.pcap")
	testutil.WritePCAP(t, path, frames)

	fields := []string{"infiniband.bth.opcode", "infiniband.bth.destqp", "infiniband.bth.psn",
		"infiniband.bth.padcnt", "infiniband.bth.p_key", "udp.dstport", "_ws.expert.message", "_ws.malformed"}
	// Our test payloads are arbitrary bytes; keep tshark's heuristic
	// upper-layer dissectors (which guess at RDMA payloads and call them
	// malformed when the guess fails) out of the verdict on our framing.
	rows := testutil.TSharkFields(t, path, fields, testutil.DisableRDMAPayloadDissectors()...)
	if len(rows) != len(want)+1 {
		t.Fatalf("tshark printed %d lines for %d frames:\n%q", len(rows), len(want)+1, rows)
	}
	if control := rows[len(want)]; control[0] != "6" || control[len(fields)-1] == "" {
		t.Errorf("control frame (truncated RETH) not reported malformed: %q", control)
	} else {
		t.Logf("control frame: %q", control)
	}
	for i, w := range want {
		got := rows[i]
		exp := []string{
			strconv.Itoa(int(w.p.OpCode)),
			fmt.Sprintf("0x%06x", w.p.DestQP), // tshark shows the QP in hex
			strconv.Itoa(int(w.p.PSN)),
			strconv.Itoa(int(w.p.PadCount)),
			strconv.Itoa(int(w.p.PKey)),
			"4791",
			"", // no expert message
			"", // not malformed
		}
		for j := range fields {
			if got[j] != exp[j] {
				t.Errorf("%s: tshark %s = %q, want %q", w.name, fields[j], got[j], exp[j])
			}
		}
	}
}
