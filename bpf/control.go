package bpf

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// RegisterSocket makes frames of ClassRoCEv2 and ClassOnet received on
// queue go to the AF_XDP socket fd (bound to that queue of the attached
// interface). It replaces any socket registered for the queue. The kernel
// removes the entry by itself when the socket is closed.
func (d *Dispatcher) RegisterSocket(queue int, fd int) error {
	if queue < 0 || queue >= MaxQueues {
		return fmt.Errorf("register xsk for queue %d: %w", queue, ErrInvalidQueue)
	}
	if fd < 0 {
		return fmt.Errorf("register xsk for queue %d: invalid fd %d", queue, fd)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	if err := d.objs.OnetXsks.Update(uint32(queue), uint32(fd), ebpf.UpdateAny); err != nil {
		return fmt.Errorf("register xsk fd %d for queue %d: %w", fd, queue, err)
	}
	return nil
}

// UnregisterSocket removes the socket registered for queue; RoCEv2 and onet
// frames on it then go to the kernel (counted as RedirectFail). Removing a
// queue with no socket is not an error.
func (d *Dispatcher) UnregisterSocket(queue int) error {
	if queue < 0 || queue >= MaxQueues {
		return fmt.Errorf("unregister xsk for queue %d: %w", queue, ErrInvalidQueue)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	err := d.objs.OnetXsks.Delete(uint32(queue))
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unregister xsk for queue %d: %w", queue, err)
	}
	return nil
}

// SetOnetPort sets the UDP destination port of ClassOnet; 0 disables the
// class (such datagrams become ClassOther). A port of 4791 never matches:
// RoCEv2 wins.
func (d *Dispatcher) SetOnetPort(port uint16) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	cfg := dispatcherConfig{OnetPort: port}
	if err := d.objs.OnetConfig.Update(uint32(0), &cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("set onet port %d: %w", port, err)
	}
	return nil
}

// SetFault makes the program drop frames of class c with probability
// ppm/1e6 (XDP_DROP, counted in ClassCounters.FaultDrop); 0 turns it off,
// PPMScale drops every frame. Malformed frames are never fault-dropped.
func (d *Dispatcher) SetFault(c Class, ppm uint32) error {
	if !c.Valid() {
		return fmt.Errorf("set fault for %s: %w", c, ErrInvalidClass)
	}
	if ppm > PPMScale {
		return fmt.Errorf("set fault for %s to %d ppm: %w", c, ppm, ErrInvalidFault)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	if err := d.objs.OnetFaults.Update(uint32(c), ppm, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("set fault for %s to %d ppm: %w", c, ppm, err)
	}
	return nil
}

// Fault returns the drop probability of class c in parts per million.
func (d *Dispatcher) Fault(c Class) (uint32, error) {
	if !c.Valid() {
		return 0, fmt.Errorf("get fault for %s: %w", c, ErrInvalidClass)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, ErrClosed
	}
	var ppm uint32
	if err := d.objs.OnetFaults.Lookup(uint32(c), &ppm); err != nil {
		return 0, fmt.Errorf("get fault for %s: %w", c, err)
	}
	return ppm, nil
}
