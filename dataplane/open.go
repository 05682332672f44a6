package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
)

// Transport names a Port implementation for Open.
type Transport string

const (
	// TransportAuto picks AF_XDP when it works here and kernel UDP otherwise,
	// saying why in Caps().Reason.
	TransportAuto Transport = "auto"
	// TransportAFXDP requires AF_XDP.
	TransportAFXDP Transport = "af_xdp"
	// TransportUDP uses kernel UDP sockets.
	TransportUDP Transport = "udp"
)

// OpenOptions configure Open.
type OpenOptions struct {
	// Transport selects the implementation; default TransportAuto.
	Transport Transport
	// Local is the address and UDP port to receive on. For AF_XDP it must be
	// an address of a local interface.
	Local netip.AddrPort
	// Ifname is the interface for AF_XDP; empty means the one that holds
	// Local's address.
	Ifname string
	// AFXDP holds further AF_XDP settings (its Ifname and Local are set by
	// Open).
	AFXDP AFXDPOptions
	// UDP holds further kernel UDP settings (its Local and Reason are set by
	// Open; MaxPayload defaults to the interface's MTU).
	UDP UDPPortOptions
}

// geteuid is a variable so tests can play a non-root user.
var geteuid = os.Geteuid

// Open builds the Port that opts ask for. With TransportAuto it tries AF_XDP
// and falls back to kernel UDP, recording the reason in Caps().Reason. Like
// NewAFXDPPort it must run in the network namespace of the interface.
func Open(opts OpenOptions) (Port, error) {
	ifname, mtu, err := interfaceOf(opts.Local.Addr(), opts.Ifname)
	switch opts.Transport {
	case TransportAFXDP:
		if err != nil {
			return nil, err
		}
		return openAFXDP(opts, ifname)
	case TransportUDP:
		return openUDP(opts, mtu, "kernel UDP requested")
	case "", TransportAuto:
		if geteuid() != 0 {
			return openUDP(opts, mtu, "not root: AF_XDP needs CAP_NET_ADMIN and CAP_BPF")
		}
		if err != nil {
			return openUDP(opts, mtu, "AF_XDP unavailable: "+err.Error())
		}
		p, xerr := openAFXDP(opts, ifname)
		if xerr == nil {
			return p, nil
		}
		if errors.Is(xerr, ErrInUse) {
			return nil, fmt.Errorf("open port on %v: %w", opts.Local, xerr)
		}
		return openUDP(opts, mtu, "AF_XDP unavailable: "+xerr.Error())
	default:
		return nil, fmt.Errorf("open port: unknown transport %q (want auto, af_xdp or udp)", opts.Transport)
	}
}

func openAFXDP(opts OpenOptions, ifname string) (Port, error) {
	o := opts.AFXDP
	o.Ifname = ifname
	o.Local = opts.Local
	p, err := NewAFXDPPort(o)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return p, nil
}

func openUDP(opts OpenOptions, mtu int, reason string) (Port, error) {
	o := opts.UDP
	o.Local = opts.Local
	o.Reason = reason
	if o.MaxPayload == 0 && mtu > 0 {
		o.MaxPayload = mtu - ipv4UDPOverhead
		if opts.Local.Addr().Is6() {
			o.MaxPayload = mtu - ipv6UDPOverhead
		}
		o.MaxPayload = min(o.MaxPayload, maxUDPPayload) // lo has MTU 65536
	}
	p, err := NewUDPPort(o)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// interfaceOf finds the interface holding addr (or checks the one named) and
// its MTU, in the caller's network namespace.
func interfaceOf(addr netip.Addr, ifname string) (string, int, error) {
	if ifname != "" {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return "", 0, fmt.Errorf("find interface %s: %w", ifname, err)
		}
		return ifname, l.Attrs().MTU, nil
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", 0, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr.Unmap() {
			l, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				return "", 0, fmt.Errorf("find interface of %v: %w", addr, err)
			}
			return l.Attrs().Name, l.Attrs().MTU, nil
		}
	}
	return "", 0, fmt.Errorf("no interface holds %v: %w", addr, ErrNoRoute)
}
