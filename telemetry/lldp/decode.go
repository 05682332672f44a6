package lldp

import (
	"encoding/binary"
	"fmt"
	"net"
)

// malformed builds a decode error wrapping ErrMalformed.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// DecodeFrame decodes an Ethernet frame carrying an LLDPDU (with at most
// one 802.1Q tag) and returns its source MAC (aliasing frame) and LLDPDU.
func DecodeFrame(frame []byte) (src net.HardwareAddr, p *LLDPDU, err error) {
	if len(frame) < 14 {
		return nil, nil, malformed("frame of %d bytes is shorter than an ethernet header", len(frame))
	}
	et := binary.BigEndian.Uint16(frame[12:14])
	off := 14
	if et == 0x8100 || et == 0x88a8 {
		if len(frame) < 18 {
			return nil, nil, malformed("vlan-tagged frame of %d bytes is too short", len(frame))
		}
		et = binary.BigEndian.Uint16(frame[16:18])
		off = 18
	}
	if et != EtherType {
		return nil, nil, malformed("ethertype %#04x is not lldp", et)
	}
	p, err = Decode(frame[off:])
	if err != nil {
		return nil, nil, err
	}
	return net.HardwareAddr(frame[6:12]), p, nil
}

// Decode decodes an LLDPDU (the Ethernet payload). It requires the
// Chassis ID, Port ID and TTL TLVs first and in that order, checks every
// TLV length against the standard, rejects a second copy of a TLV that may
// appear once, and stops at the End TLV (bytes after it, such as Ethernet
// padding, are ignored). A missing End TLV is accepted when the TLVs fill
// the buffer exactly, as 802.1AB-2009 made it optional.
func Decode(b []byte) (*LLDPDU, error) {
	p := &LLDPDU{}
	var seen uint32 // bit per TLV type 0..31 seen once
	for i := 0; ; i++ {
		if len(b) == 0 {
			if i < 3 {
				return nil, malformed("lldpdu ends after %d tlvs, before the mandatory ones", i)
			}
			return p, nil
		}
		if len(b) < 2 {
			return nil, malformed("tlv %d: 1 byte left, a tlv header needs 2", i)
		}
		h := binary.BigEndian.Uint16(b)
		typ, n := uint8(h>>9), int(h&0x1ff)
		if len(b)-2 < n {
			return nil, malformed("tlv %d (type %d): length %d exceeds the %d bytes left", i, typ, n, len(b)-2)
		}
		v := b[2 : 2+n]
		b = b[2+n:]
		if i < 3 && typ != uint8(TypeChassisID+i) {
			return nil, malformed("tlv %d has type %d, want %d (chassis id, port id, ttl come first)", i, typ, TypeChassisID+i)
		}
		if typ < TypeManagementAddress {
			if seen&(1<<typ) != 0 {
				return nil, malformed("tlv %d: second tlv of type %d", i, typ)
			}
			seen |= 1 << typ
		}
		switch typ {
		case TypeEnd:
			if n != 0 {
				return nil, malformed("end tlv has length %d, want 0", n)
			}
			return p, nil
		case TypeChassisID, TypePortID:
			if n < 2 || n > 256 {
				return nil, malformed("tlv %d (type %d): id length %d outside 2..256", i, typ, n)
			}
			id := ID{Subtype: v[0], Value: clone(v[1:])}
			if typ == TypeChassisID {
				p.ChassisID = id
			} else {
				p.PortID = id
			}
		case TypeTTL:
			if n != 2 {
				return nil, malformed("ttl tlv has length %d, want 2", n)
			}
			p.TTL = binary.BigEndian.Uint16(v)
		case TypePortDescription:
			if n > 255 {
				return nil, malformed("port description of %d bytes, at most 255 allowed", n)
			}
			p.PortDescription = string(v)
		case TypeSystemName:
			if n > 255 {
				return nil, malformed("system name of %d bytes, at most 255 allowed", n)
			}
			p.SystemName = string(v)
		case TypeSystemDescription:
			if n > 255 {
				return nil, malformed("system description of %d bytes, at most 255 allowed", n)
			}
			p.SystemDescription = string(v)
		case TypeSystemCapabilities:
			if n != 4 {
				return nil, malformed("system capabilities tlv has length %d, want 4", n)
			}
			p.HasCapabilities = true
			p.Capabilities = binary.BigEndian.Uint16(v)
			p.EnabledCapabilities = binary.BigEndian.Uint16(v[2:])
		case TypeManagementAddress:
			m, err := decodeMgmt(v)
			if err != nil {
				return nil, fmt.Errorf("tlv %d: %w", i, err)
			}
			p.ManagementAddresses = append(p.ManagementAddresses, m)
		default:
			if typ == TypeOrgSpecific && n < 4 {
				return nil, malformed("organizationally specific tlv has length %d, want at least 4 (oui and subtype)", n)
			}
			p.Unknown = append(p.Unknown, TLV{Type: typ, Value: clone(v)})
		}
	}
}

// decodeMgmt decodes a Management Address TLV value: address string length
// (2..32, counting the family byte), family, address, interface numbering
// subtype, interface number, OID string length (0..128), OID.
func decodeMgmt(v []byte) (ManagementAddress, error) {
	var m ManagementAddress
	if len(v) < 9 || len(v) > 167 {
		return m, malformed("management address tlv has length %d outside 9..167", len(v))
	}
	al := int(v[0])
	if al < 2 || al > 32 {
		return m, malformed("management address string length %d outside 2..32", al)
	}
	if len(v) < 1+al+5+1 {
		return m, malformed("management address string length %d overruns the %d-byte tlv", al, len(v))
	}
	m.Family = v[1]
	m.Addr = clone(v[2 : 1+al])
	r := v[1+al:]
	m.IfSubtype = r[0]
	m.IfNumber = binary.BigEndian.Uint32(r[1:5])
	ol := int(r[5])
	if ol > 128 || len(r) != 6+ol {
		return m, malformed("management address oid length %d does not fill the %d bytes left", ol, len(r)-6)
	}
	if ol > 0 {
		m.OID = clone(r[6:])
	}
	return m, nil
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
