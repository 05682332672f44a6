package wire

// CNPLen is the length of an encoded CNP: BTH, 16 reserved bytes, ICRC.
const CNPLen = BTHLen + CNPReservedLen + ICRCLen

// EncodeCNP writes a RoCEv2 congestion notification packet for the flow
// whose sender owns queue pair destQP: opcode 0x81, BECN set (BTH byte 4 =
// 0x40), P_Key 0xFFFF, PSN 0, 16 zero bytes, and 4 zero bytes for the ICRC.
// It returns CNPLen. Errors: ErrFieldRange (destQP above 24 bits),
// ErrShortBuffer.
func EncodeCNP(dst []byte, destQP uint32) (int, error) {
	p := Packet{BTH: BTH{OpCode: OpCNP, PKey: DefaultPKey, BECN: true, DestQP: destQP}}
	return Encode(dst, &p)
}
