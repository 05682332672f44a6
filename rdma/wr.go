package rdma

import "fmt"

// SGE is one scatter/gather element: Length bytes at virtual address Addr
// inside the memory region whose local key is LKey.
type SGE struct {
	Addr   uint64
	Length uint32
	LKey   uint32
}

// WROpcode is the operation of a send-queue work request (IBV_WR_*).
type WROpcode uint8

// Send-queue operations.
const (
	WRRDMAWrite         WROpcode = 0
	WRRDMAWriteWithImm  WROpcode = 1
	WRSend              WROpcode = 2
	WRSendWithImm       WROpcode = 3
	WRRDMARead          WROpcode = 4
	WRAtomicCmpAndSwp   WROpcode = 5
	WRAtomicFetchAndAdd WROpcode = 6
)

var wrOpcodeNames = [...]string{"RDMA_WRITE", "RDMA_WRITE_WITH_IMM", "SEND", "SEND_WITH_IMM", "RDMA_READ", "ATOMIC_CMP_AND_SWP", "ATOMIC_FETCH_AND_ADD"}

func (o WROpcode) String() string {
	if int(o) < len(wrOpcodeNames) {
		return wrOpcodeNames[o]
	}
	return fmt.Sprintf("WROpcode(%d)", uint8(o))
}

// SendWR is a send-queue work request. The SGL's memory must stay registered
// and unchanged (for sends and writes) or untouched (for reads and atomics)
// until the request completes.
type SendWR struct {
	// ID comes back in the completion.
	ID     uint64
	Opcode WROpcode
	// SGL is the local memory: the data to send or write, the destination
	// of a READ, or (one 8-byte element) the destination of an atomic's
	// original value.
	SGL []SGE
	// Signaled asks for a completion even when the QP does not signal all
	// requests; an unsignaled request completes silently unless it fails.
	Signaled bool
	// Imm is the immediate data of the *_WITH_IMM operations (network
	// byte order on the wire, host order here).
	Imm uint32
	// RemoteAddr and RKey name the remote memory of RDMA and atomic
	// operations.
	RemoteAddr uint64
	RKey       uint32
	// CompareAdd is the compare value of CMP_AND_SWP, the addend of
	// FETCH_AND_ADD; Swap is the swap value of CMP_AND_SWP.
	CompareAdd uint64
	Swap       uint64
}

// RecvWR is a receive-queue work request: where an incoming SEND lands.
type RecvWR struct {
	ID  uint64
	SGL []SGE
}

// WCOpcode is the operation a completion reports (IBV_WC_*).
type WCOpcode uint8

// Completion operations.
const (
	WCSend            WCOpcode = 0
	WCRDMAWrite       WCOpcode = 1
	WCRDMARead        WCOpcode = 2
	WCCompSwap        WCOpcode = 3
	WCFetchAdd        WCOpcode = 4
	WCRecv            WCOpcode = 128
	WCRecvRDMAWithImm WCOpcode = 129
)

func (o WCOpcode) String() string {
	switch o {
	case WCSend:
		return "SEND"
	case WCRDMAWrite:
		return "RDMA_WRITE"
	case WCRDMARead:
		return "RDMA_READ"
	case WCCompSwap:
		return "COMP_SWAP"
	case WCFetchAdd:
		return "FETCH_ADD"
	case WCRecv:
		return "RECV"
	case WCRecvRDMAWithImm:
		return "RECV_RDMA_WITH_IMM"
	}
	return fmt.Sprintf("WCOpcode(%d)", uint8(o))
}

// WCStatus is a completion status, numbered as enum ibv_wc_status.
type WCStatus uint8

// Completion statuses.
const (
	WCSuccess        WCStatus = 0
	WCLocLenErr      WCStatus = 1  // local length error: a SEND longer than the RECV, an SGE beyond its region
	WCLocQPOpErr     WCStatus = 2  // local QP operation error
	WCLocProtErr     WCStatus = 4  // local protection error: bad lkey or missing local write access
	WCWRFlushErr     WCStatus = 5  // flushed: the QP went to the error state before the request ran
	WCBadRespErr     WCStatus = 7  // unexpected response from the responder
	WCLocAccessErr   WCStatus = 8  // local access error (responder side)
	WCRemInvReqErr   WCStatus = 9  // remote invalid request (NAK 0x61)
	WCRemAccessErr   WCStatus = 10 // remote access error: bad rkey, bounds or permissions (NAK 0x62)
	WCRemOpErr       WCStatus = 11 // remote operational error (NAK 0x63)
	WCRetryExcErr    WCStatus = 12 // transport retry counter exceeded: the peer stopped answering
	WCRNRRetryExcErr WCStatus = 13 // RNR retry counter exceeded: no RECV posted at the peer
	WCGeneralErr     WCStatus = 21
)

var wcStatusNames = map[WCStatus]string{
	WCSuccess: "success", WCLocLenErr: "local length error", WCLocQPOpErr: "local QP operation error",
	WCLocProtErr: "local protection error", WCWRFlushErr: "Work Request Flushed Error", WCBadRespErr: "bad response error",
	WCLocAccessErr: "local access error", WCRemInvReqErr: "remote invalid request error", WCRemAccessErr: "remote access error",
	WCRemOpErr: "remote operation error", WCRetryExcErr: "transport retry counter exceeded",
	WCRNRRetryExcErr: "RNR retry counter exceeded", WCGeneralErr: "general error",
}

// String is the text ibv_wc_status_str gives.
func (s WCStatus) String() string {
	if n, ok := wcStatusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("WCStatus(%d)", uint8(s))
}

// WC is a work completion.
type WC struct {
	ID     uint64
	Status WCStatus
	Opcode WCOpcode
	// ByteLen is the bytes received (RECV) or transferred (READ).
	ByteLen uint32
	// Imm is the immediate data; valid when HasImm.
	Imm    uint32
	HasImm bool
	// QPN is the local QP the completion belongs to.
	QPN uint32
	// VendorErr carries the NAK syndrome or other detail of an error.
	VendorErr uint32
}

// Err returns nil for a successful completion and a *CompletionError
// otherwise, for callers that prefer errors to statuses.
func (wc *WC) Err() error {
	if wc.Status == WCSuccess {
		return nil
	}
	return &CompletionError{WC: *wc}
}

// CompletionError is a failed completion as an error.
type CompletionError struct{ WC WC }

func (e *CompletionError) Error() string {
	return fmt.Sprintf("rdma: work request %d on QP %#x: %s (%s)", e.WC.ID, e.WC.QPN, e.WC.Status, e.WC.Opcode)
}
