package stack

import (
	"fmt"
	"net/netip"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// RDMAOptions configure OpenRDMA.
type RDMAOptions struct {
	// Addr is the local IP address; the engine listens on UDP 4791 there.
	Addr netip.Addr
	// Transport picks the port: auto (AF_XDP, else kernel UDP), af_xdp or
	// udp. Default auto.
	Transport dataplane.Transport
	// Port holds further port settings (busy-poll, attach mode, offloads);
	// its Transport and Local are set from the fields above.
	Port dataplane.OpenOptions
	// Engine holds further engine settings; its Port is set by OpenRDMA.
	Engine rocev2.Options
}

// OpenRDMA opens the port and starts a RoCEv2 engine on it. Like
// dataplane.Open it must run in the network namespace of the address (the
// engine's goroutines may run anywhere afterwards). Closing the device
// closes the port.
func OpenRDMA(o RDMAOptions) (*rocev2.Device, error) {
	po := o.Port
	po.Transport = o.Transport
	po.Local = netip.AddrPortFrom(o.Addr, rocev2.UDPPort)
	po.AFXDP.NoUDPChecksum = true // RoCEv2 over IPv4: UDP checksum 0, the ICRC protects
	port, err := dataplane.Open(po)
	if err != nil {
		return nil, fmt.Errorf("open rdma stack on %v: %w", o.Addr, err)
	}
	eo := o.Engine
	eo.Port = port
	dev, err := rocev2.Open(eo)
	if err != nil {
		port.Close()
		return nil, fmt.Errorf("open rdma stack on %v: %w", o.Addr, err)
	}
	return dev, nil
}
