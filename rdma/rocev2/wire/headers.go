package wire

import "encoding/binary"

// Header lengths in bytes.
const (
	BTHLen          = 12 // base transport header
	RETHLen         = 16 // RDMA extended transport header
	AETHLen         = 4  // ACK extended transport header
	ImmDtLen        = 4  // immediate data
	AtomicETHLen    = 28 // atomic extended transport header
	AtomicAckETHLen = 8  // atomic acknowledge extended transport header
	CNPReservedLen  = 16 // reserved bytes that follow the BTH of a CNP
	ICRCLen         = 4  // invariant CRC at the end of every packet

	// UDPPort is the IANA UDP destination port of RoCEv2.
	UDPPort = 4791
	// DefaultPKey is the default partition key (full membership).
	DefaultPKey = 0xFFFF
	// Mask24 keeps the 24 bits of a QP number, PSN or MSN.
	Mask24 = 0xFFFFFF
)

// BTH is the base transport header, the first 12 bytes of every packet:
//
//	byte 0      OpCode
//	byte 1      SE(7) MigReq(6) PadCount(5:4) TVer(3:0)
//	bytes 2-3   P_Key
//	byte 4      FECN(7) BECN(6) reserved(5:0)
//	bytes 5-7   DestQP
//	byte 8      AckReq(7) reserved(6:0)
//	bytes 9-11  PSN
//
// Reserved bits are sent as zero and ignored on receive. Byte 4 is not
// covered by the ICRC (switches may set FECN/BECN).
//
// BTH and the other header structs are plain values without references:
// they belong to whoever holds them and need no synchronization of their
// own.
type BTH struct {
	OpCode OpCode
	SE     bool // solicited event
	MigReq bool // migration state (1 = migrated / no APM in use)
	// PadCount is the number of pad bytes (0-3) after the payload. Encode
	// computes it from len(Payload) and stores it here; Decode reads it.
	PadCount uint8
	TVer     uint8  // transport header version; only 0 is valid
	PKey     uint16 // partition key
	FECN     bool   // forward explicit congestion notification
	BECN     bool   // backward explicit congestion notification (set in CNPs)
	DestQP   uint32 // destination queue pair number, 24 bits
	AckReq   bool   // the requester asks for an acknowledgement
	PSN      uint32 // packet sequence number, 24 bits
}

func putBTH(b []byte, h *BTH) {
	_ = b[BTHLen-1]
	b[0] = byte(h.OpCode)
	b[1] = boolBit(h.SE, 7) | boolBit(h.MigReq, 6) | (h.PadCount&3)<<4 | h.TVer&0x0F
	binary.BigEndian.PutUint16(b[2:4], h.PKey)
	binary.BigEndian.PutUint32(b[4:8], h.DestQP&Mask24)
	b[4] = boolBit(h.FECN, 7) | boolBit(h.BECN, 6)
	binary.BigEndian.PutUint32(b[8:12], h.PSN&Mask24)
	b[8] = boolBit(h.AckReq, 7)
}

func parseBTH(b []byte, h *BTH) {
	_ = b[BTHLen-1]
	h.OpCode = OpCode(b[0])
	h.SE = b[1]&0x80 != 0
	h.MigReq = b[1]&0x40 != 0
	h.PadCount = b[1] >> 4 & 3
	h.TVer = b[1] & 0x0F
	h.PKey = binary.BigEndian.Uint16(b[2:4])
	h.FECN = b[4]&0x80 != 0
	h.BECN = b[4]&0x40 != 0
	h.DestQP = binary.BigEndian.Uint32(b[4:8]) & Mask24
	h.AckReq = b[8]&0x80 != 0
	h.PSN = binary.BigEndian.Uint32(b[8:12]) & Mask24
}

func boolBit(v bool, bit uint) byte {
	if v {
		return 1 << bit
	}
	return 0
}

// RETH is the RDMA extended transport header of RDMA WRITE first/only and
// RDMA READ request packets: virtual address (bytes 0-7), R_Key (8-11) and
// DMA length (12-15), all big-endian.
type RETH struct {
	VA     uint64 // remote virtual address
	RKey   uint32 // remote key of the target memory region
	DMALen uint32 // length of the whole WRITE or READ in bytes
}

func putRETH(b []byte, h *RETH) {
	_ = b[RETHLen-1]
	binary.BigEndian.PutUint64(b[0:8], h.VA)
	binary.BigEndian.PutUint32(b[8:12], h.RKey)
	binary.BigEndian.PutUint32(b[12:16], h.DMALen)
}

func parseRETH(b []byte, h *RETH) {
	_ = b[RETHLen-1]
	h.VA = binary.BigEndian.Uint64(b[0:8])
	h.RKey = binary.BigEndian.Uint32(b[8:12])
	h.DMALen = binary.BigEndian.Uint32(b[12:16])
}

// AETH is the ACK extended transport header: the syndrome (byte 0) and the
// 24-bit message sequence number (bytes 1-3).
type AETH struct {
	Syndrome Syndrome
	MSN      uint32 // message sequence number, 24 bits
}

func putAETH(b []byte, h *AETH) {
	_ = b[AETHLen-1]
	binary.BigEndian.PutUint32(b[0:4], uint32(h.Syndrome)<<24|h.MSN&Mask24)
}

func parseAETH(b []byte, h *AETH) {
	_ = b[AETHLen-1]
	v := binary.BigEndian.Uint32(b[0:4])
	h.Syndrome = Syndrome(v >> 24)
	h.MSN = v & Mask24
}

// AtomicETH is the atomic extended transport header of COMPARE_SWAP and
// FETCH_ADD: virtual address (bytes 0-7), R_Key (8-11), swap or add data
// (12-19) and compare data (20-27), all big-endian.
type AtomicETH struct {
	VA      uint64 // remote virtual address, 8-byte aligned
	RKey    uint32 // remote key
	SwapAdd uint64 // swap value (COMPARE_SWAP) or addend (FETCH_ADD)
	Compare uint64 // compare value (COMPARE_SWAP; zero for FETCH_ADD)
}

func putAtomicETH(b []byte, h *AtomicETH) {
	_ = b[AtomicETHLen-1]
	binary.BigEndian.PutUint64(b[0:8], h.VA)
	binary.BigEndian.PutUint32(b[8:12], h.RKey)
	binary.BigEndian.PutUint64(b[12:20], h.SwapAdd)
	binary.BigEndian.PutUint64(b[20:28], h.Compare)
}

func parseAtomicETH(b []byte, h *AtomicETH) {
	_ = b[AtomicETHLen-1]
	h.VA = binary.BigEndian.Uint64(b[0:8])
	h.RKey = binary.BigEndian.Uint32(b[8:12])
	h.SwapAdd = binary.BigEndian.Uint64(b[12:20])
	h.Compare = binary.BigEndian.Uint64(b[20:28])
}

// AtomicAckETH is the atomic acknowledge extended transport header of
// ATOMIC_ACKNOWLEDGE: the original remote data, 8 bytes big-endian.
// Packet carries it as Packet.AtomicAck.
type AtomicAckETH struct {
	OrigData uint64
}
