package lldp

import (
	"encoding/binary"
	"fmt"
	"net"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Append appends the encoded LLDPDU (Ethernet payload, ending with the End
// TLV) to b. It fails, wrapping ErrInvalid, when a field is outside the
// standard's bounds: IDs of 1..255 bytes, strings of at most 255 bytes,
// management addresses of 1..31 bytes with OIDs of at most 128, unknown
// TLVs of types 9..126 or 127 with at most 511 bytes.
func (p *LLDPDU) Append(b []byte) ([]byte, error) {
	if err := p.validate(); err != nil {
		return b, err
	}
	b = appendHdr(b, TypeChassisID, 1+len(p.ChassisID.Value))
	b = append(append(b, p.ChassisID.Subtype), p.ChassisID.Value...)
	b = appendHdr(b, TypePortID, 1+len(p.PortID.Value))
	b = append(append(b, p.PortID.Subtype), p.PortID.Value...)
	b = appendHdr(b, TypeTTL, 2)
	b = binary.BigEndian.AppendUint16(b, p.TTL)
	for _, s := range []struct {
		typ uint8
		v   string
	}{{TypePortDescription, p.PortDescription}, {TypeSystemName, p.SystemName}, {TypeSystemDescription, p.SystemDescription}} {
		if s.v != "" {
			b = append(appendHdr(b, s.typ, len(s.v)), s.v...)
		}
	}
	if p.HasCapabilities {
		b = appendHdr(b, TypeSystemCapabilities, 4)
		b = binary.BigEndian.AppendUint16(b, p.Capabilities)
		b = binary.BigEndian.AppendUint16(b, p.EnabledCapabilities)
	}
	for _, m := range p.ManagementAddresses {
		b = appendHdr(b, TypeManagementAddress, 1+1+len(m.Addr)+5+1+len(m.OID))
		b = append(b, byte(1+len(m.Addr)), m.Family)
		b = append(b, m.Addr...)
		b = append(b, m.IfSubtype)
		b = binary.BigEndian.AppendUint32(b, m.IfNumber)
		b = append(append(b, byte(len(m.OID))), m.OID...)
	}
	for _, t := range p.Unknown {
		b = append(appendHdr(b, t.Type, len(t.Value)), t.Value...)
	}
	return appendHdr(b, TypeEnd, 0), nil
}

// Encode returns the encoded LLDPDU; see Append.
func (p *LLDPDU) Encode() ([]byte, error) { return p.Append(nil) }

// AppendFrame appends an Ethernet frame from src to NearestBridge carrying
// p, padded to the 60-byte minimum.
func AppendFrame(b []byte, src net.HardwareAddr, p *LLDPDU) ([]byte, error) {
	if len(src) != 6 {
		return b, invalid("source mac %v is not 6 bytes", src)
	}
	start := len(b)
	b = append(b, NearestBridge...)
	b = append(b, src...)
	b = binary.BigEndian.AppendUint16(b, EtherType)
	b, err := p.Append(b)
	if err != nil {
		return b[:start], err
	}
	for len(b)-start < 60 {
		b = append(b, 0)
	}
	return b, nil
}

func appendHdr(b []byte, typ uint8, n int) []byte {
	return binary.BigEndian.AppendUint16(b, uint16(typ)<<9|uint16(n))
}

func (p *LLDPDU) validate() error {
	for _, id := range []struct {
		name string
		id   ID
	}{{"chassis id", p.ChassisID}, {"port id", p.PortID}} {
		if n := len(id.id.Value); n < 1 || n > 255 {
			return invalid("%s of %d bytes, want 1..255", id.name, n)
		}
	}
	for _, s := range []struct {
		name, v string
	}{{"port description", p.PortDescription}, {"system name", p.SystemName}, {"system description", p.SystemDescription}} {
		if len(s.v) > 255 {
			return invalid("%s of %d bytes, want at most 255", s.name, len(s.v))
		}
	}
	for _, m := range p.ManagementAddresses {
		if len(m.Addr) < 1 || len(m.Addr) > 31 {
			return invalid("management address of %d bytes, want 1..31", len(m.Addr))
		}
		if len(m.OID) > 128 {
			return invalid("management address oid of %d bytes, want at most 128", len(m.OID))
		}
	}
	for _, t := range p.Unknown {
		if t.Type <= TypeManagementAddress || t.Type > TypeOrgSpecific {
			return invalid("raw tlv type %d, want 9..127", t.Type)
		}
		if t.Type == TypeOrgSpecific && len(t.Value) < 4 {
			return invalid("organizationally specific tlv of %d bytes, want at least 4", len(t.Value))
		}
		if len(t.Value) > 511 {
			return invalid("raw tlv of %d bytes, want at most 511", len(t.Value))
		}
	}
	return nil
}
