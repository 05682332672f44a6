package lldp

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// packetConn is one AF_PACKET socket bound to EtherType on one interface,
// registered with the runtime poller so that Close unblocks a reader.
type packetConn struct {
	ifindex int
	ifname  string
	mac     net.HardwareAddr
	mgmt    []netip.Addr // management addresses advertised here
	f       *os.File
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// openPacketConn opens the socket in the current network namespace.
func openPacketConn(ifi *net.Interface) (*packetConn, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(EtherType)))
	if err != nil {
		return nil, fmt.Errorf("lldp socket on %s: %w", ifi.Name, err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(EtherType), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lldp bind to %s: %w", ifi.Name, err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_MULTICAST, Alen: 6}
	copy(mreq.Address[:], NearestBridge)
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lldp join %v on %s: %w", NearestBridge, ifi.Name, err)
	}
	return &packetConn{ifindex: ifi.Index, ifname: ifi.Name, mac: ifi.HardwareAddr,
		f: os.NewFile(uintptr(fd), "lldp-"+ifi.Name)}, nil
}

// recv reads one frame into buf, skipping frames this host sent
// (PACKET_OUTGOING, which packet taps also see).
func (c *packetConn) recv(buf []byte) (int, error) {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	for {
		var n int
		var outgoing bool
		var rerr error
		err = rc.Read(func(fd uintptr) bool {
			var from unix.Sockaddr
			n, from, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC)
			if rerr == unix.EAGAIN {
				return false
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				outgoing = true
			}
			return true
		})
		if err != nil {
			return 0, err
		}
		if rerr != nil {
			return 0, rerr
		}
		if !outgoing {
			return n, nil
		}
	}
}

func (c *packetConn) send(frame []byte) error {
	_, err := c.f.Write(frame)
	return err
}

func (c *packetConn) close() error { return c.f.Close() }

func netInterface(name string) (*net.Interface, error) { return net.InterfaceByName(name) }
