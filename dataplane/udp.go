//go:build linux

package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Offload selects whether the kernel UDP port uses a segmentation offload
// (UDP_SEGMENT for sends, UDP_GRO for receives).
type Offload int8

const (
	// OffloadAuto uses the offload when the kernel supports it (the default).
	OffloadAuto Offload = iota
	// OffloadOff never uses it.
	OffloadOff
	// OffloadOn requires it: NewUDPPort fails with ErrNotSupported when the
	// kernel lacks it.
	OffloadOn
)

// UDPPortOptions configure NewUDPPort. The zero value of every field but
// Local picks a sensible default.
type UDPPortOptions struct {
	// Local is the address to bind (port 0 picks an ephemeral port). Its
	// family decides the socket's: an IPv6 address gives an IPv6-only socket.
	Local netip.AddrPort
	// BatchSize is the most datagrams one sendmmsg/recvmmsg call moves;
	// default 64. It sizes the preallocated message arrays (and, on receive,
	// BatchSize buffers of 64 KiB each so that a GRO super-datagram always
	// fits).
	BatchSize int
	// MaxPayload is the largest UDP payload Send accepts; default the payload
	// of a 1500-byte MTU: 1472 over IPv4, 1452 over IPv6. At most 65507.
	MaxPayload int
	// GSO coalesces consecutive equal-size datagrams to one destination into
	// one UDP_SEGMENT send; GRO asks the kernel for coalesced receives
	// (UDP_GRO) that the port splits back. Both default to OffloadAuto.
	GSO, GRO Offload
	// SocketBuffer sets SO_RCVBUF and SO_SNDBUF (SO_*BUFFORCE first, which
	// works as root and ignores the sysctl ceilings); default 4 MiB.
	SocketBuffer int
	// Reason says why the caller chose kernel UDP; Caps().Reason reports it.
	Reason string
}

// Defaults for UDPPortOptions.
const (
	DefaultUDPBatchSize    = 64
	DefaultUDPSocketBuffer = 4 << 20
)

const (
	maxUDPPayload   = 65507 // 65535 - 20 (IPv4) - 8 (UDP)
	maxGSOSegments  = 64    // UDP_MAX_SEGMENTS is 64 on older kernels, 128 on newer ones
	maxGSOBytes     = maxUDPPayload
	rxSlotSize      = 1 << 16 // fits any UDP datagram, coalesced or not
	rxSlotStride    = rxSlotSize + 64
	ipv4UDPOverhead = 28
	ipv6UDPOverhead = 48
)

// UDPPort is a Port over a kernel UDP socket: recvmmsg/sendmmsg batches,
// UDP_SEGMENT/UDP_GRO where the kernel has them, and TOS/ECN through control
// messages. It works without privileges.
//
// Send and Recv follow the Port contract: one goroutine owns each direction;
// Close, Stats, Caps and LocalAddr may be called from any goroutine.
type UDPPort struct {
	conn   *net.UDPConn
	rc     syscall.RawConn
	family int
	local  netip.AddrPort
	maxPay int
	batch  int
	caps   Caps
	stats  PortStats
	closed atomic.Bool

	gso atomic.Bool // cleared by Send when the kernel rejects a segmented send
	gro bool

	// Owned by the Recv goroutine (SetRecvTimeout included).
	timeout time.Duration
	rx      udpRx

	// Owned by the Send goroutine.
	tx udpTx
}

var _ Port = (*UDPPort)(nil)

// NewUDPPort opens a UDP socket bound to opts.Local and prepares its batch
// buffers.
func NewUDPPort(opts UDPPortOptions) (*UDPPort, error) {
	local := opts.Local
	if !local.Addr().IsValid() {
		return nil, fmt.Errorf("udp port: local address %v: %w", local, errInvalidLocal)
	}
	if local.Addr().Is4In6() {
		local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultUDPBatchSize
	}
	if opts.SocketBuffer <= 0 {
		opts.SocketBuffer = DefaultUDPSocketBuffer
	}
	network, family, overhead := "udp4", unix.AF_INET, ipv4UDPOverhead
	if local.Addr().Is6() {
		network, family, overhead = "udp6", unix.AF_INET6, ipv6UDPOverhead
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 1500 - overhead
	}
	if opts.MaxPayload > maxUDPPayload {
		return nil, fmt.Errorf("udp port: max payload %d exceeds %d: %w", opts.MaxPayload, maxUDPPayload, ErrTooBig)
	}

	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(local))
	if err != nil {
		return nil, fmt.Errorf("udp port: listen on %v: %w", local, err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("udp port: raw conn on %v: %w", local, err)
	}
	p := &UDPPort{
		conn:   conn,
		rc:     rc,
		family: family,
		local:  conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		maxPay: opts.MaxPayload,
		batch:  opts.BatchSize,
	}
	if p.local.Addr().Is4In6() {
		p.local = netip.AddrPortFrom(p.local.Addr().Unmap(), p.local.Port())
	}
	var setupErr error
	if err := rc.Control(func(fd uintptr) { setupErr = p.setupSocket(int(fd), opts) }); err != nil {
		setupErr = err
	}
	if setupErr != nil {
		conn.Close()
		return nil, fmt.Errorf("udp port: configure socket on %v: %w", p.local, setupErr)
	}
	p.caps = Caps{Kind: "udp", TxTOS: true, RxTOS: p.caps.RxTOS, Reason: opts.Reason}
	p.tx.init(p.batch)
	p.rx.init(p.batch)
	p.tx.sendFn = p.sendOnFD
	p.rx.recvFn = p.recvOnFD
	return p, nil
}

var errInvalidLocal = errors.New("invalid local address")

// setupSocket sets buffer sizes, TOS reception and the offloads.
func (p *UDPPort) setupSocket(fd int, opts UDPPortOptions) error {
	setBuf := func(force, plain int) {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, opts.SocketBuffer) != nil {
			// Not root: the kernel caps SO_*BUF at net.core.[rw]mem_max, which
			// is fine for a fallback path.
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, opts.SocketBuffer)
		}
	}
	setBuf(unix.SO_RCVBUFFORCE, unix.SO_RCVBUF)
	setBuf(unix.SO_SNDBUFFORCE, unix.SO_SNDBUF)

	if p.family == unix.AF_INET {
		p.caps.RxTOS = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTOS, 1) == nil
	} else {
		p.caps.RxTOS = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1) == nil
	}

	if opts.GSO != OffloadOff {
		// Kernels with UDP_SEGMENT answer the getsockopt; older ones say
		// ENOPROTOOPT.
		_, err := unix.GetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT)
		switch {
		case err == nil:
			p.gso.Store(true)
		case opts.GSO == OffloadOn:
			return fmt.Errorf("udp segmentation offload: %w (%w)", ErrNotSupported, err)
		}
	}
	if opts.GRO != OffloadOff {
		err := unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1)
		switch {
		case err == nil:
			p.gro = true
		case opts.GRO == OffloadOn:
			return fmt.Errorf("udp receive offload: %w (%w)", ErrNotSupported, err)
		}
	}
	return nil
}

// LocalAddr is the bound address (with the port the kernel chose for port 0).
func (p *UDPPort) LocalAddr() netip.AddrPort { return p.local }

// MaxPayload is the largest payload Send accepts.
func (p *UDPPort) MaxPayload() int { return p.maxPay }

// Caps reports kind "udp"; RxTOS when the kernel delivers TOS/TCLASS.
func (p *UDPPort) Caps() Caps { return p.caps }

// Stats returns the live counters.
func (p *UDPPort) Stats() *PortStats { return &p.stats }

// Offloads reports whether segmented sends (GSO) and coalesced receives (GRO)
// are in use. GSO turns off by itself if the kernel rejects a segmented send.
func (p *UDPPort) Offloads() (gso, gro bool) { return p.gso.Load(), p.gro }

// SetRecvTimeout bounds how long Recv waits; 0 waits forever.
func (p *UDPPort) SetRecvTimeout(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if d == 0 && p.timeout != 0 {
		_ = p.conn.SetReadDeadline(time.Time{})
	}
	p.timeout = d
}

// Close closes the socket and unblocks a pending Recv, which returns
// ErrClosed. Closing twice is harmless.
func (p *UDPPort) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	if err := p.conn.Close(); err != nil {
		return fmt.Errorf("udp port: close %v: %w", p.local, err)
	}
	return nil
}

// mapConnErr turns errors from the net package's poller into the Port
// sentinels.
func mapConnErr(err error) error {
	switch {
	case errors.Is(err, net.ErrClosed):
		return ErrClosed
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	}
	return err
}
