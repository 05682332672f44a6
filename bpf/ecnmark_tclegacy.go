package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The ECN marker's fallback hook for kernels without tcx (before 6.6): a
// direct-action cls_bpf filter on the egress side of a clsact qdisc, set up
// through rtnetlink (the package imports no netlink library). Unlike a tcx
// link it outlives the process, so Close must run.

// Constants from linux/pkt_sched.h and linux/pkt_cls.h that x/sys lacks.
const (
	tcHClsact         = 0xfffffff1 // TC_H_CLSACT: parent of a clsact qdisc
	tcHClsactHandle   = 0xffff0000 // the clsact qdisc's handle
	tcHClsactEgress   = 0xfffffff3 // TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)
	tcaBPFFD          = 6          // TCA_BPF_FD
	tcaBPFName        = 7          // TCA_BPF_NAME
	tcaBPFFlags       = 8          // TCA_BPF_FLAGS
	tcaBPFFlagDirect  = 1          // TCA_BPF_FLAG_ACT_DIRECT
	ecnLegacyPrio     = 0xc0de     // filter priority of the marker
	ecnLegacyHandle   = 1          // filter handle of the marker
	ethPAllNetworkOrd = 0x0300     // htons(ETH_P_ALL)
	sizeofTcMsg       = 20
)

// legacyTCFilter is an attached cls_bpf egress filter; Close removes it
// (the clsact qdisc stays: other programs may use it).
type legacyTCFilter struct {
	ifindex int
}

// attachLegacyTC adds a clsact qdisc to ifindex if it has none and the
// marker as a direct-action bpf filter on its egress hook. It fails with
// EEXIST when a marker is already attached there.
func attachLegacyTC(ifindex int, prog *ebpf.Program, name string) (*legacyTCFilter, error) {
	qdisc := tcRequest(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifindex, tcHClsactHandle, tcHClsact, 0)
	qdisc = appendAttr(qdisc, unix.TCA_KIND, []byte("clsact\x00"))
	if err := rtnetlinkDo(qdisc); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("add clsact qdisc: %w", err)
	}
	var opts []byte
	opts = appendAttr(opts, tcaBPFFD, binary.NativeEndian.AppendUint32(nil, uint32(prog.FD())))
	opts = appendAttr(opts, tcaBPFName, append([]byte(name), 0))
	opts = appendAttr(opts, tcaBPFFlags, binary.NativeEndian.AppendUint32(nil, tcaBPFFlagDirect))
	filter := tcRequest(unix.RTM_NEWTFILTER, unix.NLM_F_CREATE|unix.NLM_F_EXCL, ifindex, ecnLegacyHandle, tcHClsactEgress, ecnLegacyPrio<<16|ethPAllNetworkOrd)
	filter = appendAttr(filter, unix.TCA_KIND, []byte("bpf\x00"))
	filter = appendAttr(filter, unix.TCA_OPTIONS, opts)
	if err := rtnetlinkDo(filter); err != nil {
		return nil, fmt.Errorf("add bpf filter on clsact egress: %w", err)
	}
	return &legacyTCFilter{ifindex: ifindex}, nil
}

// Close removes the filter. It must run in the interface's namespace.
func (f *legacyTCFilter) Close() error {
	req := tcRequest(unix.RTM_DELTFILTER, 0, f.ifindex, ecnLegacyHandle, tcHClsactEgress, ecnLegacyPrio<<16|ethPAllNetworkOrd)
	req = appendAttr(req, unix.TCA_KIND, []byte("bpf\x00"))
	if err := rtnetlinkDo(req); err != nil {
		return fmt.Errorf("delete bpf filter from clsact egress of ifindex %d: %w", f.ifindex, err)
	}
	return nil
}

// tcRequest returns a netlink header (length filled in by rtnetlinkDo) and
// a struct tcmsg.
func tcRequest(typ uint16, flags int, ifindex int, handle, parent, info uint32) []byte {
	b := make([]byte, unix.SizeofNlMsghdr, 128)
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], uint16(flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK))
	binary.NativeEndian.PutUint32(b[8:], 1) // sequence number
	tcm := make([]byte, sizeofTcMsg)
	tcm[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(tcm[4:], uint32(int32(ifindex)))
	binary.NativeEndian.PutUint32(tcm[8:], handle)
	binary.NativeEndian.PutUint32(tcm[12:], parent)
	binary.NativeEndian.PutUint32(tcm[16:], info)
	return append(b, tcm...)
}

// appendAttr appends a netlink attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofRtAttr+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// rtnetlinkDo sends one request and waits for its acknowledgement.
func rtnetlinkDo(req []byte) error {
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("rtnetlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("rtnetlink send: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("rtnetlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("rtnetlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || m.Header.Seq != 1 {
				continue
			}
			if len(m.Data) < 4 {
				return errors.New("rtnetlink: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
}
