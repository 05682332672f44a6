package stack

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// sharedDevices are the RoCEv2 engines this process's communicators run
// on, one per local address and port kind: an address has one UDP port
// 4791 and one XDP program, so a second communicator on it (torch's
// new_group, a second onet_comm_create) shares the engine under its own
// store prefix. The last communicator to close closes the engine.
var sharedDevices struct {
	mu sync.Mutex
	m  map[deviceKey]*sharedDevice
}

type deviceKey struct {
	addr netip.Addr
	port dataplane.Transport
}

type sharedDevice struct {
	dev  *rocev2.Device
	refs int
}

// acquireDevice returns the engine on addr (opening it on first use, in
// the caller's network namespace, busy-polling unless noBusyPoll: the
// first opener decides) and the function that lets go of it.
func acquireDevice(addr netip.Addr, port dataplane.Transport, noBusyPoll bool) (*rocev2.Device, func() error, error) {
	if port == "" {
		port = dataplane.TransportAuto
	}
	k := deviceKey{addr, port}
	sharedDevices.mu.Lock()
	defer sharedDevices.mu.Unlock()
	sd := sharedDevices.m[k]
	if sd == nil {
		dev, err := OpenRDMA(RDMAOptions{Addr: addr, Transport: port,
			Port: dataplane.OpenOptions{AFXDP: dataplane.AFXDPOptions{BusyPollAuto: !noBusyPoll}}})
		if err != nil {
			return nil, nil, err
		}
		sd = &sharedDevice{dev: dev}
		if sharedDevices.m == nil {
			sharedDevices.m = map[deviceKey]*sharedDevice{}
		}
		sharedDevices.m[k] = sd
	}
	sd.refs++
	var once sync.Once
	release := func() (err error) {
		once.Do(func() {
			sharedDevices.mu.Lock()
			sd.refs--
			last := sd.refs == 0
			if last {
				delete(sharedDevices.m, k)
			}
			sharedDevices.mu.Unlock()
			if last {
				if err = sd.dev.Close(); err != nil {
					err = fmt.Errorf("close rocev2 engine on %v: %w", addr, err)
				}
			}
		})
		return err
	}
	return sd.dev, release, nil
}
