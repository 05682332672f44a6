package wire

import (
	"strconv"
	"time"
)

// Syndrome is the AETH syndrome byte: bit 7 reserved (zero), bits 6-5 the
// kind (00 ACK, 01 RNR NAK, 10 reserved, 11 NAK) and bits 4-0 a value
// whose meaning depends on the kind (credit count, RNR timer code, NAK
// code). IBA Vol. 1 section 9.3.5, table 43.
type Syndrome uint8

// Syndrome kinds (bits 6-5, in place).
const (
	SyndromeKindACK      Syndrome = 0x00
	SyndromeKindRNRNAK   Syndrome = 0x20
	SyndromeKindReserved Syndrome = 0x40
	SyndromeKindNAK      Syndrome = 0x60

	syndromeKindMask  Syndrome = 0x60
	syndromeValueMask Syndrome = 0x1F
)

// NAK syndromes (kind NAK with its code).
const (
	NAKPSNSequenceError       Syndrome = 0x60
	NAKInvalidRequest         Syndrome = 0x61
	NAKRemoteAccessError      Syndrome = 0x62
	NAKRemoteOperationalError Syndrome = 0x63
	NAKInvalidRDRequest       Syndrome = 0x64
)

// CreditInvalid is the ACK credit code meaning "no credit count" (end-to-end
// flow control not in use, or a response that carries no credits).
const CreditInvalid = 31

// ACKSyndrome returns the syndrome of an ACK carrying credit code
// creditCode (0-31, see Credits; higher bits are dropped).
func ACKSyndrome(creditCode uint8) Syndrome {
	return SyndromeKindACK | Syndrome(creditCode)&syndromeValueMask
}

// RNRNAKSyndrome returns the syndrome of an RNR NAK asking the requester to
// wait RNRTimer(timerCode) before retrying (higher bits are dropped).
func RNRNAKSyndrome(timerCode uint8) Syndrome {
	return SyndromeKindRNRNAK | Syndrome(timerCode)&syndromeValueMask
}

// Kind returns bits 6-5 of the syndrome in place: one of SyndromeKindACK,
// SyndromeKindRNRNAK, SyndromeKindReserved, SyndromeKindNAK.
func (s Syndrome) Kind() Syndrome { return s & syndromeKindMask }

// Value returns bits 4-0: the credit code, RNR timer code or NAK code.
func (s Syndrome) Value() uint8 { return uint8(s & syndromeValueMask) }

// IsACK reports whether the syndrome is a positive acknowledgement.
func (s Syndrome) IsACK() bool { return s.Kind() == SyndromeKindACK }

// IsRNRNAK reports whether the syndrome is a receiver-not-ready NAK.
func (s Syndrome) IsRNRNAK() bool { return s.Kind() == SyndromeKindRNRNAK }

// IsNAK reports whether the syndrome is a NAK (sequence error, invalid
// request, remote access or operational error, invalid RD request).
func (s Syndrome) IsNAK() bool { return s.Kind() == SyndromeKindNAK }

// String describes the syndrome ("ACK credit code 31", "RNR NAK timer code 14",
// "NAK remote access error"). Not for per-packet paths: it may allocate.
func (s Syndrome) String() string {
	v := strconv.Itoa(int(s.Value()))
	switch s.Kind() {
	case SyndromeKindACK:
		return "ACK credit code " + v
	case SyndromeKindRNRNAK:
		return "RNR NAK timer code " + v
	case SyndromeKindNAK:
		switch s {
		case NAKPSNSequenceError:
			return "NAK PSN sequence error"
		case NAKInvalidRequest:
			return "NAK invalid request"
		case NAKRemoteAccessError:
			return "NAK remote access error"
		case NAKRemoteOperationalError:
			return "NAK remote operational error"
		case NAKInvalidRDRequest:
			return "NAK invalid RD request"
		}
		return "NAK reserved code " + v
	}
	return "reserved syndrome 0x" + strconv.FormatUint(uint64(s), 16)
}

// Credits returns the number of receive credits an ACK credit code stands
// for (IBA table 44: 0, 1, 2, 3, 4, 6, 8, 12, ... 32768) and false for
// CreditInvalid (and codes above 31).
func Credits(code uint8) (int, bool) {
	switch {
	case code >= CreditInvalid:
		return 0, false
	case code <= 2:
		return int(code), true
	case code%2 == 0: // 4, 8, 16, ...
		return 1 << (code / 2), true
	default: // 3, 6, 12, ...
		return 3 << ((code - 3) / 2), true
	}
}

// rnrTimerMicros is the minimum RNR NAK timer field encoding (IBA table
// 45) in microseconds, indexed by the 5-bit timer code. Code 0 is the
// longest, 655.36 ms.
var rnrTimerMicros = [32]uint32{
	655360, 10, 20, 30, 40, 60, 80, 120,
	160, 240, 320, 480, 640, 960, 1280, 1920,
	2560, 3840, 5120, 7680, 10240, 15360, 20480, 30720,
	40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520,
}

// RNRTimer returns the time a requester waits after an RNR NAK carrying
// timer code code (only the low 5 bits are used): 0 = 655.36 ms,
// 1 = 0.01 ms, 2 = 0.02 ms, ... 31 = 491.52 ms.
func RNRTimer(code uint8) time.Duration {
	return time.Duration(rnrTimerMicros[code&31]) * time.Microsecond
}
