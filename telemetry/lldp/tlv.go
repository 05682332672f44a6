package lldp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// EtherType is LLDP's ethertype.
const EtherType = 0x88cc

// NearestBridge is the destination group address of every LLDPDU we send
// (the nearest-bridge group, not forwarded by 802.1D bridges).
var NearestBridge = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}

// ErrMalformed is wrapped by every decode error caused by the bytes of the
// frame (as opposed to a caller mistake).
var ErrMalformed = errors.New("malformed lldpdu")

// ErrInvalid is wrapped by encode errors: a field of the LLDPDU to send is
// out of the standard's bounds.
var ErrInvalid = errors.New("invalid lldpdu")

// TLV types (IEEE 802.1AB-2016 table 8-1).
const (
	TypeEnd                = 0
	TypeChassisID          = 1
	TypePortID             = 2
	TypeTTL                = 3
	TypePortDescription    = 4
	TypeSystemName         = 5
	TypeSystemDescription  = 6
	TypeSystemCapabilities = 7
	TypeManagementAddress  = 8
	TypeOrgSpecific        = 127
)

// Chassis ID subtypes (table 8-2).
const (
	ChassisComponent     = 1
	ChassisIfAlias       = 2
	ChassisPortComponent = 3
	ChassisMAC           = 4
	ChassisNetworkAddr   = 5
	ChassisIfName        = 6
	ChassisLocal         = 7
)

// Port ID subtypes (table 8-3).
const (
	PortIfAlias      = 1
	PortComponent    = 2
	PortMAC          = 3
	PortNetworkAddr  = 4
	PortIfName       = 5
	PortAgentCircuit = 6
	PortLocal        = 7
)

// IANA address families used by network-address IDs and management
// addresses.
const (
	AddrFamilyIPv4 = 1
	AddrFamilyIPv6 = 2
	AddrFamily802  = 6
)

// Management address interface numbering subtypes.
const (
	IfNumUnknown = 1
	IfNumIfIndex = 2
	IfNumSysPort = 3
)

// System capability bits (table 8-4).
const (
	CapOther      = 1 << 0
	CapRepeater   = 1 << 1
	CapBridge     = 1 << 2
	CapWLANAP     = 1 << 3
	CapRouter     = 1 << 4
	CapTelephone  = 1 << 5
	CapDOCSIS     = 1 << 6
	CapStation    = 1 << 7
	CapCVLAN      = 1 << 8
	CapSVLAN      = 1 << 9
	CapTwoPortMAC = 1 << 10
)

// ID is a chassis ID or port ID: a subtype and its value (1..255 bytes).
type ID struct {
	Subtype uint8  `json:"subtype"`
	Value   []byte `json:"value"`
}

// MACID returns an ID of the given subtype (ChassisMAC or PortMAC) whose
// value is mac.
func MACID(subtype uint8, mac net.HardwareAddr) ID {
	return ID{Subtype: subtype, Value: append([]byte(nil), mac...)}
}

// TextID returns an ID of the given subtype whose value is s.
func TextID(subtype uint8, s string) ID { return ID{Subtype: subtype, Value: []byte(s)} }

// String renders the value by what the subtype says it is: a MAC address
// for MAC subtypes with 6 bytes, an IP address for network-address
// subtypes, text when printable, hex otherwise. isPort selects the port
// subtype numbering.
func (id ID) format(isPort bool) string {
	mac, netaddr := uint8(ChassisMAC), uint8(ChassisNetworkAddr)
	if isPort {
		mac, netaddr = PortMAC, PortNetworkAddr
	}
	switch {
	case id.Subtype == mac && len(id.Value) == 6:
		return net.HardwareAddr(id.Value).String()
	case id.Subtype == netaddr && len(id.Value) >= 1:
		if a, ok := familyAddr(id.Value[0], id.Value[1:]); ok {
			return a.String()
		}
	}
	if printable(id.Value) {
		return string(id.Value)
	}
	return fmt.Sprintf("%x", id.Value)
}

// ChassisString renders id as a chassis ID.
func (id ID) ChassisString() string { return id.format(false) }

// PortString renders id as a port ID.
func (id ID) PortString() string { return id.format(true) }

func printable(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func familyAddr(family byte, b []byte) (netip.Addr, bool) {
	switch {
	case family == AddrFamilyIPv4 && len(b) == 4:
		return netip.AddrFrom4([4]byte(b)), true
	case family == AddrFamilyIPv6 && len(b) == 16:
		return netip.AddrFrom16([16]byte(b)), true
	}
	return netip.Addr{}, false
}

// ManagementAddress is one Management Address TLV.
type ManagementAddress struct {
	// Family is the IANA address family (AddrFamilyIPv4, ...).
	Family uint8 `json:"family"`
	// Addr is the address, 1..31 bytes.
	Addr []byte `json:"addr"`
	// IfSubtype is the interface numbering subtype (IfNumIfIndex, ...).
	IfSubtype uint8 `json:"if_subtype"`
	// IfNumber is the interface number under IfSubtype.
	IfNumber uint32 `json:"if_number"`
	// OID is the object identifier, 0..128 bytes, usually empty.
	OID []byte `json:"oid,omitempty"`
}

// IPManagementAddress returns a management address TLV for an IP address
// on the interface with index ifindex.
func IPManagementAddress(a netip.Addr, ifindex int) ManagementAddress {
	m := ManagementAddress{Family: AddrFamilyIPv6, IfSubtype: IfNumIfIndex, IfNumber: uint32(ifindex)}
	if a.Is4() || a.Is4In6() {
		m.Family = AddrFamilyIPv4
		b := a.Unmap().As4()
		m.Addr = b[:]
	} else {
		b := a.As16()
		m.Addr = b[:]
	}
	return m
}

// String renders the address as an IP address where it is one.
func (m ManagementAddress) String() string {
	if a, ok := familyAddr(m.Family, m.Addr); ok {
		return a.String()
	}
	if m.Family == AddrFamily802 && len(m.Addr) == 6 {
		return net.HardwareAddr(m.Addr).String()
	}
	return fmt.Sprintf("%d:%x", m.Family, m.Addr)
}

// TLV is a TLV kept raw: type 0..127, value 0..511 bytes.
type TLV struct {
	Type  uint8  `json:"type"`
	Value []byte `json:"value"`
}

// LLDPDU is one decoded or to-be-encoded LLDP data unit. A decoded LLDPDU
// owns its byte slices (they do not alias the frame).
type LLDPDU struct {
	ChassisID ID `json:"chassis_id"`
	PortID    ID `json:"port_id"`
	// TTL is the time to live in seconds; 0 announces a shutdown.
	TTL               uint16 `json:"ttl"`
	PortDescription   string `json:"port_description,omitempty"`
	SystemName        string `json:"system_name,omitempty"`
	SystemDescription string `json:"system_description,omitempty"`
	// HasCapabilities says whether the System Capabilities TLV is present.
	HasCapabilities     bool                `json:"has_capabilities,omitempty"`
	Capabilities        uint16              `json:"capabilities,omitempty"`
	EnabledCapabilities uint16              `json:"enabled_capabilities,omitempty"`
	ManagementAddresses []ManagementAddress `json:"management_addresses,omitempty"`
	// Unknown holds every other TLV in frame order (org-specific TLVs
	// included, their OUI and subtype left in Value).
	Unknown []TLV `json:"unknown,omitempty"`
}

// CapabilityString renders a capability bitmap as lldpd does ("Bridge,
// Router").
func CapabilityString(c uint16) string {
	names := []string{"Other", "Repeater", "Bridge", "WLAN", "Router", "Telephone", "DOCSIS", "Station", "CVLAN", "SVLAN", "TPMR"}
	var s []string
	for i, n := range names {
		if c&(1<<i) != 0 {
			s = append(s, n)
		}
	}
	return strings.Join(s, ", ")
}
