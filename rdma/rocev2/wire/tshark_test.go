package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane"
)

// writePcap writes frames to path as a classic pcap file
// (LINKTYPE_ETHERNET, microsecond timestamps).
func writePcap(t *testing.T, path string, frames [][]byte) {
	t.Helper()
	var b bytes.Buffer
	le := binary.LittleEndian
	var hdr [24]byte
	le.PutUint32(hdr[0:], 0xa1b2c3d4) // magic
	le.PutUint16(hdr[4:], 2)          // version 2.4
	le.PutUint16(hdr[6:], 4)
	le.PutUint32(hdr[16:], 65535) // snap length
	le.PutUint32(hdr[20:], 1)     // Ethernet
	b.Write(hdr[:])
	for i, f := range frames {
		var rec [16]byte
		le.PutUint32(rec[0:], uint32(i+1)) // seconds
		le.PutUint32(rec[8:], uint32(len(f)))
		le.PutUint32(rec[12:], uint32(len(f)))
		b.Write(rec[:])
		b.Write(f)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFramesDecodeInTshark builds a complete Ethernet/IP/UDP frame for
// every golden packet (IPv4 and IPv6, UDP destination port 4791) and checks
// that tshark decodes each as RoCEv2 with the opcode, QP and PSN we put in,
// with no expert warning (malformed packet and the like). tshark does not
// check the ICRC; the other tests here do.
func TestFramesDecodeInTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark is not installed (apt-get install tshark): cannot cross-check RoCEv2 decoding")
	}
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
	writePcap(t, path, frames)

	fields := []string{"infiniband.bth.opcode", "infiniband.bth.destqp", "infiniband.bth.psn",
		"infiniband.bth.padcnt", "infiniband.bth.p_key", "udp.dstport", "_ws.expert.message", "_ws.malformed"}
	args := []string{"-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|"}
	// Our test payloads are arbitrary bytes; keep tshark's heuristic
	// upper-layer dissectors (which guess at RDMA payloads and call them
	// malformed when the guess fails) out of the verdict on our framing.
	for _, proto := range []string{"rpcordma", "smb_direct", "nvme-rdma", "lnet", "iser", "fcoib",
		"infiniband_sdp", "infiniband.eoib", "smc"} {
		args = append(args, "--disable-protocol", proto)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tshark, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) != len(want)+1 {
		t.Fatalf("tshark printed %d lines for %d frames:\n%s", len(lines), len(want)+1, out)
	}
	if control := strings.Split(lines[len(want)], "\t"); len(control) != len(fields) ||
		control[0] != "6" || control[len(fields)-1] == "" {
		t.Errorf("control frame (truncated RETH) not reported malformed: %q", lines[len(want)])
	} else {
		t.Logf("control frame: %q", lines[len(want)])
	}
	for i, w := range want {
		got := strings.Split(lines[i], "\t")
		if len(got) != len(fields) {
			t.Fatalf("%s: tshark line %q has %d fields, want %d", w.name, lines[i], len(got), len(fields))
		}
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
