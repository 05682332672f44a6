package lldp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"testing"
)

func fullPDU() *LLDPDU {
	return &LLDPDU{
		ChassisID:           MACID(ChassisMAC, net.HardwareAddr{2, 0, 0, 0, 0, 1}),
		PortID:              TextID(PortIfName, "eth0"),
		TTL:                 120,
		PortDescription:     "uplink to spine1",
		SystemName:          "leaf1",
		SystemDescription:   "onetdp test",
		HasCapabilities:     true,
		Capabilities:        CapBridge | CapRouter | CapStation,
		EnabledCapabilities: CapRouter,
		ManagementAddresses: []ManagementAddress{
			IPManagementAddress(netip.MustParseAddr("198.18.0.1"), 2),
			IPManagementAddress(netip.MustParseAddr("fd00:198:18::1"), 2),
			{Family: AddrFamily802, Addr: []byte{2, 0, 0, 0, 0, 1}, IfSubtype: IfNumSysPort, IfNumber: 7, OID: []byte{0x2b, 6, 1}},
		},
		Unknown: []TLV{
			{Type: TypeOrgSpecific, Value: []byte{0x00, 0x12, 0x0f, 0x04, 0x05, 0xdc}}, // 802.3 max frame size 1500
			{Type: 42, Value: []byte("reserved")},
		},
	}
}

func TestRoundTripEveryTLV(t *testing.T) {
	p := fullPDU()
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", q, p)
	}
	// The last two bytes are the End TLV.
	if !bytes.HasSuffix(b, []byte{0, 0}) {
		t.Fatalf("no end tlv at %x", b[len(b)-2:])
	}
	if got := q.ManagementAddresses[0].String(); got != "198.18.0.1" {
		t.Fatalf("mgmt addr %q", got)
	}
	if got := q.ManagementAddresses[1].String(); got != "fd00:198:18::1" {
		t.Fatalf("mgmt addr6 %q", got)
	}
	if got := q.ChassisID.ChassisString(); got != "02:00:00:00:00:01" {
		t.Fatalf("chassis %q", got)
	}
	if got := CapabilityString(q.Capabilities); got != "Bridge, Router, Station" {
		t.Fatalf("caps %q", got)
	}
}

func TestRoundTripFrame(t *testing.T) {
	src := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	p := &LLDPDU{ChassisID: TextID(ChassisLocal, "c"), PortID: TextID(PortLocal, "p"), TTL: 1}
	f, err := AppendFrame([]byte{0xee}, src, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != 61 || f[0] != 0xee {
		t.Fatalf("frame of %d bytes (want prefix kept and padding to 60)", len(f))
	}
	if !bytes.Equal(f[1:7], NearestBridge) || binary.BigEndian.Uint16(f[13:15]) != EtherType {
		t.Fatalf("header %x", f[1:15])
	}
	gotSrc, q, err := DecodeFrame(f[1:])
	if err != nil {
		t.Fatal(err)
	}
	if gotSrc.String() != src.String() || !reflect.DeepEqual(p, q) {
		t.Fatalf("got %v %+v", gotSrc, q)
	}
	// One VLAN tag is skipped.
	tagged := append(append(append([]byte{}, f[1:13]...), 0x81, 0x00, 0x00, 0x05), f[13:]...)
	if _, q, err = DecodeFrame(tagged); err != nil || !reflect.DeepEqual(p, q) {
		t.Fatalf("tagged: %v %+v", err, q)
	}
}

func TestDecodeLLDPDFrame(t *testing.T) {
	f, err := os.ReadFile("testdata/lldpd-1.0.16.bin")
	if err != nil {
		t.Fatal(err)
	}
	src, p, err := DecodeFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	if src.String() != "02:13:de:b7:00:01" || p.ChassisID.ChassisString() != "02:13:de:b7:00:01" || p.PortID.PortString() != "02:13:de:b7:00:01" {
		t.Fatalf("src %v chassis %v port %v", src, p.ChassisID, p.PortID)
	}
	if p.TTL != 120 || p.SystemName != "lldpd-peer" || p.PortDescription != "eth0" {
		t.Fatalf("ttl %d name %q descr %q", p.TTL, p.SystemName, p.PortDescription)
	}
	if !p.HasCapabilities || p.Capabilities != 0x9c || p.EnabledCapabilities != CapStation {
		t.Fatalf("caps %#x/%#x", p.Capabilities, p.EnabledCapabilities)
	}
	if len(p.ManagementAddresses) != 1 || p.ManagementAddresses[0].String() != "198.18.0.2" || p.ManagementAddresses[0].IfNumber != 2 {
		t.Fatalf("mgmt %+v", p.ManagementAddresses)
	}
	f, err = os.ReadFile("testdata/lldpd-1.0.16-shutdown.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, p, err = DecodeFrame(f); err != nil || p.TTL != 0 {
		t.Fatalf("shutdown: %v %+v", err, p)
	}
}

// tlv builds one raw TLV.
func tlv(typ uint8, v ...byte) []byte {
	return append(appendHdr(nil, typ, len(v)), v...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestDecodeMalformed(t *testing.T) {
	chassis := tlv(TypeChassisID, ChassisLocal, 'c')
	port := tlv(TypePortID, PortLocal, 'p')
	ttl := tlv(TypeTTL, 0, 120)
	end := tlv(TypeEnd)
	head := cat(chassis, port, ttl)
	long := make([]byte, 256)
	cases := map[string][]byte{
		"empty":                 nil,
		"one byte":              {0x02},
		"length overruns":       {0x02, 0x10, 4, 'c'},
		"missing ttl":           cat(chassis, port, end),
		"port before chassis":   cat(port, chassis, ttl, end),
		"chassis id empty":      cat(tlv(TypeChassisID, 4), port, ttl, end),
		"chassis subtype only":  cat(tlv(TypeChassisID), port, ttl, end),
		"ttl short":             cat(chassis, port, tlv(TypeTTL, 1), end),
		"ttl long":              cat(chassis, port, tlv(TypeTTL, 0, 1, 2), end),
		"duplicate system name": cat(head, tlv(TypeSystemName, 'a'), tlv(TypeSystemName, 'b'), end),
		"duplicate ttl":         cat(head, ttl, end),
		"end with length":       cat(head, tlv(TypeEnd, 0)),
		"caps length 3":         cat(head, tlv(TypeSystemCapabilities, 0, 1, 0), end),
		"system name 256":       cat(head, tlv(TypeSystemName, long...), end),
		"mgmt short":            cat(head, tlv(TypeManagementAddress, 5, 1, 1, 2, 3), end),
		"mgmt addr len 1":       cat(head, tlv(TypeManagementAddress, 1, 1, 2, 0, 0, 0, 1, 0, 0), end),
		"mgmt addr overruns":    cat(head, tlv(TypeManagementAddress, 30, 1, 1, 2, 3, 4, 2, 0, 0, 0), end),
		"mgmt oid overruns":     cat(head, tlv(TypeManagementAddress, 5, 1, 1, 2, 3, 4, 2, 0, 0, 0, 1, 9), end),
		"mgmt trailing bytes":   cat(head, tlv(TypeManagementAddress, 5, 1, 1, 2, 3, 4, 2, 0, 0, 0, 1, 0, 7, 7), end),
		"org tlv short":         cat(head, tlv(TypeOrgSpecific, 0, 0x12, 0x0f), end),
		"truncated after ttl":   cat(head, []byte{0x0a}),
	}
	for name, b := range cases {
		p, err := Decode(b)
		if !errors.Is(err, ErrMalformed) || p != nil {
			t.Errorf("%s: got %+v, %v; want ErrMalformed", name, p, err)
		}
	}
	// The same bytes as a well-formed LLDPDU decode, so the cases above
	// fail for the reason they name.
	if _, err := Decode(cat(head, tlv(TypeManagementAddress, 5, 1, 1, 2, 3, 4, 2, 0, 0, 0, 1, 0), end)); err != nil {
		t.Fatalf("valid mgmt: %v", err)
	}
	// No End TLV is fine when the TLVs fill the buffer; padding after End
	// is ignored.
	if _, err := Decode(head); err != nil {
		t.Fatalf("no end: %v", err)
	}
	if _, err := Decode(cat(head, end, []byte{0xff, 0xff, 0xff})); err != nil {
		t.Fatalf("padding: %v", err)
	}
	frames := map[string][]byte{
		"short frame": make([]byte, 13),
		"not lldp":    cat(make([]byte, 12), []byte{0x08, 0x00}, head),
		"short vlan":  cat(make([]byte, 12), []byte{0x81, 0x00, 0}),
		"bad pdu":     cat(make([]byte, 12), []byte{0x88, 0xcc}, port),
	}
	for name, f := range frames {
		if _, _, err := DecodeFrame(f); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestEncodeInvalid(t *testing.T) {
	long := string(make([]byte, 256))
	cases := map[string]func(*LLDPDU){
		"no chassis":      func(p *LLDPDU) { p.ChassisID.Value = nil },
		"port 256":        func(p *LLDPDU) { p.PortID.Value = make([]byte, 256) },
		"system name 256": func(p *LLDPDU) { p.SystemName = long },
		"mgmt empty":      func(p *LLDPDU) { p.ManagementAddresses[0].Addr = nil },
		"mgmt oid 129":    func(p *LLDPDU) { p.ManagementAddresses[0].OID = make([]byte, 129) },
		"raw type 5":      func(p *LLDPDU) { p.Unknown[0].Type = TypeSystemName },
		"raw 512":         func(p *LLDPDU) { p.Unknown[1].Value = make([]byte, 512) },
		"org without oui": func(p *LLDPDU) { p.Unknown[0].Value = []byte{1} },
	}
	for name, mut := range cases {
		p := fullPDU()
		mut(p)
		if b, err := p.Encode(); !errors.Is(err, ErrInvalid) || len(b) != 0 {
			t.Errorf("%s: got %d bytes, %v; want ErrInvalid", name, len(b), err)
		}
	}
	if _, err := AppendFrame(nil, net.HardwareAddr{1}, fullPDU()); !errors.Is(err, ErrInvalid) {
		t.Errorf("short src mac: %v", err)
	}
}
