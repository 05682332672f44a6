package collective

// Tag layout, from the top bit down:
//
//	1..     point-to-point: the low 62 bits are the caller's Send/Recv tag
//	01..    control: abort notices, start-up calibration
//	00..    collectives: sequence number (42 bits) << 20 | step (20 bits)
//
// An operation's messages carry its sequence number, so operations that
// are outstanding at the same time never match each other's messages; the
// step tells apart the phases (and concurrent trees) of one algorithm.
const (
	tagP2P     Tag = 1 << 63
	tagControl Tag = 1 << 62

	stepBits = 20
	seqBits  = 42
	// MaxStep is the largest step an algorithm may use in one operation.
	maxStep = 1<<stepBits - 1
	// MaxUserTag is the largest tag Send and Recv accept.
	MaxUserTag = 1<<62 - 1

	tagAbort = tagControl | 1
	tagCalib = tagControl | 2
)

// collTag is the tag of step of the collective with sequence number seq.
func collTag(seq uint64, step int) Tag {
	return Tag(seq&(1<<seqBits-1))<<stepBits | Tag(step&maxStep)
}

// p2pTag is the transport tag of a user Send/Recv tag.
func p2pTag(tag uint64) Tag { return tagP2P | Tag(tag&MaxUserTag) }
