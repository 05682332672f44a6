package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Packet is one UDP datagram in a batch passed to Port.Send or Port.Recv.
//
// Packets and their buffers belong to the caller. A Port never retains a
// Packet or its Buf after Send or Recv returns: on Send it copies (or
// transmits from) Buf before returning, on Recv it writes into Buf.
type Packet struct {
	// Buf holds the UDP payload. On Send, Buf is the payload to transmit
	// (len(Buf) bytes, at most Port.MaxPayload()). On Recv, the port writes
	// into Buf[:cap(Buf)] and reslices Buf to the received payload length;
	// a datagram longer than cap(Buf) is dropped and counted in
	// PortStats.RxTruncated, never delivered short.
	Buf []byte
	// Addr is the remote UDP endpoint: the destination on Send, the source on
	// Recv.
	Addr netip.AddrPort
	// TOS is the IPv4 TOS / IPv6 traffic class byte (DSCP<<2 | ECN). On Send
	// it is written to the wire where the port controls the IP header (AF_XDP)
	// or the socket allows it per packet (kernel UDP). On Recv it is the value
	// that arrived, or 0 where the port cannot see it (Port.Caps says which).
	TOS uint8
	// SrcPort is the UDP source port for this datagram on Send where the
	// port can choose it per packet (Caps.TxSrcPort; RoCEv2 puts per-QP
	// ECMP entropy there); 0 means LocalAddr().Port(). Ignored on Recv.
	SrcPort uint16
	// IPID is, on Recv, the IPv4 identification of the datagram where the
	// port sees the IP header (Caps.RxIPID), else 0. The RoCEv2 ICRC covers
	// it, and NICs number their packets. Ignored on Send (0 goes out).
	IPID uint16
}

// ECN codepoints (RFC 3168), the low two bits of Packet.TOS.
const (
	ECNNotECT uint8 = 0
	ECNECT1   uint8 = 1
	ECNECT0   uint8 = 2
	ECNCE     uint8 = 3
	ECNMask   uint8 = 3
)

// Caps describes what a Port can do, so that upper layers can adapt instead of
// failing late.
type Caps struct {
	// Kind is a short name of the implementation ("af_xdp", "udp", "fake").
	Kind string
	// RxTOS reports whether Recv fills Packet.TOS (ECN visibility).
	RxTOS bool
	// TxTOS reports whether Send honours Packet.TOS.
	TxTOS bool
	// TxSrcPort reports whether Send honours Packet.SrcPort.
	TxSrcPort bool
	// RxIPID reports whether Recv fills Packet.IPID.
	RxIPID bool
	// Reason says why this implementation was chosen (fallback reason,
	// copy vs zero-copy, generic vs native XDP); empty when nothing to say.
	Reason string
}

// Port is a batch datagram endpoint bound to one local UDP address.
//
// Contract, shared by every implementation (AF_XDP, kernel UDP, fakes):
//
//   - Send transmits up to len(pkts) datagrams and returns how many it
//     accepted, n. pkts[:n] are on their way (or counted as dropped in
//     PortStats); pkts[n:] were not taken because the transmit queue was
//     full, and the caller may retry them. Send never blocks longer than it
//     takes to hand the batch to the kernel or device. An error is returned
//     only for conditions that will not clear by retrying (closed port,
//     unreachable destination with no neighbour, oversize payload); then
//     pkts[n] is the packet that caused it.
//   - Recv waits until at least one datagram is available, the port's read
//     deadline passes (ErrTimeout) or the port is closed (ErrClosed), then
//     fills up to len(pkts) entries and returns their count. It never returns
//     (0, nil), except at once for an empty pkts.
//   - Send and Recv may be called concurrently with each other, but Send must
//     not be called concurrently with Send, nor Recv with Recv: each direction
//     has a single owner goroutine. Close may be called from any goroutine and
//     unblocks a pending Recv.
//   - Neither Send nor Recv allocates in steady state.
type Port interface {
	Send(pkts []Packet) (int, error)
	Recv(pkts []Packet) (int, error)
	// SetRecvTimeout bounds how long Recv waits; 0 means wait forever.
	// It must not be called concurrently with Recv.
	SetRecvTimeout(d time.Duration)
	// LocalAddr is the UDP address the port receives on.
	LocalAddr() netip.AddrPort
	// MaxPayload is the largest UDP payload Send accepts (MTU minus IP and UDP
	// headers).
	MaxPayload() int
	Caps() Caps
	// Stats returns the live counters; the pointer stays valid after Close.
	Stats() *PortStats
	Close() error
}

// Poller is a Port whose receive side can also be polled without waiting,
// so that a goroutine waiting for something the packets bring may run the
// receive path itself (run to completion, no goroutine hand-off) while
// another goroutine parks in WaitRecv for the idle times. AFXDPPort is one.
//
//   - TryRecv takes up to len(pkts) datagrams that have arrived, without
//     waiting: (0, nil) when none has. Like Recv, it must not run
//     concurrently with Recv or TryRecv: the caller serialises the receive
//     direction (the RoCEv2 engine with a mutex).
//   - WaitRecv waits until datagrams may have arrived, the receive timeout
//     passes (ErrTimeout) or the port closes (ErrClosed). It takes nothing,
//     so it may run concurrently with TryRecv (one WaitRecv at a time).
//   - TakeSpin says whether a caller may spin on TryRecv now and, if so,
//     holds a slot until DropSpin: the busy-poll rule of the port's options
//     (AFXDPOptions.BusyPoll, BusyPollAuto). Call DropSpin once per
//     TakeSpin that returned true.
type Poller interface {
	Port
	TryRecv(pkts []Packet) (int, error)
	WaitRecv() error
	TakeSpin() bool
	DropSpin()
}

// PortStats are a Port's counters. The port owns and updates them from its
// Send and Recv goroutines; anyone may read them at any time with atomic
// loads (telemetry reads them at scrape time).
type PortStats struct {
	TxPackets   atomic.Uint64 // datagrams handed to the kernel or device
	TxBytes     atomic.Uint64 // UDP payload bytes of TxPackets
	TxDropped   atomic.Uint64 // datagrams accepted by Send but lost before the wire (no frame, send error)
	RxPackets   atomic.Uint64 // datagrams delivered by Recv
	RxBytes     atomic.Uint64 // UDP payload bytes of RxPackets
	RxDropped   atomic.Uint64 // frames received but not delivered (malformed, not for us)
	RxTruncated atomic.Uint64 // datagrams larger than the caller's buffer, dropped
	RxCE        atomic.Uint64 // delivered datagrams that arrived CE-marked
}

// Errors a caller can act on.
var (
	ErrClosed       = errors.New("dataplane: port closed")
	ErrTimeout      = errors.New("dataplane: receive timeout")
	ErrNotSupported = errors.New("dataplane: not supported")
	ErrTooBig       = errors.New("dataplane: payload exceeds MaxPayload")
	ErrNoRoute      = errors.New("dataplane: no route or neighbour to destination")
	// ErrInUse: the interface already carries the onet XDP dispatcher of
	// another AF_XDP port (of this process or another), which receives
	// the address's traffic. It wraps EBUSY. Open does not fall back to
	// kernel UDP then: that port would receive nothing.
	ErrInUse = fmt.Errorf("dataplane: interface taken by another AF_XDP port: %w", unix.EBUSY)
)
