package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opennetworks/onetdp/internal/testutil"
)

// TestFramesDecodeInTshark hands frames built by WriteUDPFrame to tshark
// with checksum validation on and checks that it decodes the same headers
// and calls both checksums good (status 1; 0 is bad, 2 unverified, 3 not
// present).
func TestFramesDecodeInTshark(t *testing.T) {
	testutil.RequireTShark(t, "cross-check frames")
	type frameCase struct {
		name      string
		spec      FrameSpec
		payload   []byte
		udpStatus string
	}
	v4 := specV4()
	v4.Src, v4.Dst = netip.AddrPortFrom(v4.Src.Addr(), 40000), netip.AddrPortFrom(v4.Dst.Addr(), 40001)
	v4vlan := v4
	v4vlan.VLAN = 0xA00A // PCP 5, VID 10
	v4vlan.TTL = 7
	v6 := specV6VLAN()
	v6.VLAN = 0
	v6.Src, v6.Dst = netip.AddrPortFrom(v6.Src.Addr(), 40002), netip.AddrPortFrom(v6.Dst.Addr(), 40003)
	v6vlan := v6
	v6vlan.VLAN = 0x0123
	v4nosum := v4
	v4nosum.NoUDPChecksum = true

	payload := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*13 + 1)
		}
		return p
	}
	cases := []frameCase{
		{"ipv4", v4, payload(64), "1"},
		{"ipv4-vlan-odd", v4vlan, payload(1001), "1"},
		{"ipv6", v6, payload(1024), "1"},
		{"ipv6-vlan", v6vlan, payload(3), "1"},
		{"ipv4-no-udp-checksum", v4nosum, payload(64), "3"},
	}
	// A payload whose checksum computes to 0, sent as 0xFFFF.
	for _, s := range []FrameSpec{v4, v6} {
		p := make([]byte, 2)
		var f UDPFrame
		if err := ParseUDPFrame(buildFrame(t, &s, p), &f); err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint16(p, f.UDPChecksum)
		cases = append(cases, frameCase{"ffff-" + family(&s), s, p, "1"})
	}

	var frames [][]byte
	for _, c := range cases {
		frames = append(frames, buildFrame(t, &c.spec, c.payload))
	}
	// Control: a corrupted payload must be reported bad, or the check above
	// proves nothing.
	bad := bytes.Clone(frames[0])
	bad[len(bad)-1] ^= 0xFF
	frames = append(frames, bad)
	cases = append(cases, frameCase{"control-bad-udp-checksum", v4, nil, "0"})

	path := filepath.Join(t.TempDir(), "frames.pcap")
	testutil.WritePCAP(t, path, frames)
	fields := []string{"vlan.id", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "udp.srcport", "udp.dstport",
		"ip.dsfield", "ipv6.tclass", "ipv6.flow", "ip.ttl", "ipv6.hlim", "udp.length",
		"ip.checksum.status", "udp.checksum.status"}
	rows := testutil.TSharkFields(t, path, fields, "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE")
	if len(rows) != len(cases) {
		t.Fatalf("tshark printed %d lines for %d frames:\n%q", len(rows), len(cases), rows)
	}
	hex := func(v uint64, width int) string {
		s := strconv.FormatUint(v, 16)
		return "0x" + strings.Repeat("0", max(0, width-len(s))) + s
	}
	for i, c := range cases {
		got := rows[i]
		s := c.spec
		want := make([]string, len(fields))
		if s.VLAN != 0 {
			want[0] = strconv.Itoa(int(s.VLAN & 0x0FFF))
		}
		ttl := s.TTL
		if ttl == 0 {
			ttl = DefaultTTL
		}
		if s.is4() {
			want[1], want[2] = s.Src.Addr().String(), s.Dst.Addr().String()
			want[7] = hex(uint64(s.TOS), 2)
			want[10] = strconv.Itoa(int(ttl))
			want[13] = "1"
		} else {
			want[3], want[4] = s.Src.Addr().String(), s.Dst.Addr().String()
			want[8] = hex(uint64(s.TOS), 8)
			want[9] = hex(uint64(s.FlowLabel), 6)
			want[11] = strconv.Itoa(int(ttl))
		}
		want[5], want[6] = strconv.Itoa(int(s.Src.Port())), strconv.Itoa(int(s.Dst.Port()))
		plen := len(c.payload)
		if c.payload == nil { // the control frame reuses frame 0
			plen = len(cases[0].payload)
		}
		want[12] = strconv.Itoa(UDPHeaderLen + plen)
		want[14] = c.udpStatus
		for j := range fields {
			if got[j] != want[j] {
				t.Errorf("%s: tshark %s = %q, want %q", c.name, fields[j], got[j], want[j])
			}
		}
	}
}
