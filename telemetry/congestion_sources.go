package telemetry

import (
	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/dataplane"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// CongestionSources are the layers a CongestionDetector reads through
// Read. Every field is optional; the caller owns the values, which must
// stay valid (or closed: a closed source is skipped) while Read runs.
type CongestionSources struct {
	// Dispatchers give the CE ratio: frames and CE-marked frames of every
	// class, counted at XDP.
	Dispatchers []*bpf.Dispatcher
	// Ports give the ring occupancy (AF_XDP rx rings), and the CE ratio
	// (delivered datagrams, CE-marked ones) when there are no Dispatchers.
	Ports []*dataplane.AFXDPPort
	// Engines give the retransmit ratio (packets sent, retransmitted), and
	// the CE ratio (RoCEv2 packets received, CE-marked) when there are
	// neither Dispatchers nor Ports: each packet is counted once, by the
	// lowest layer present.
	Engines []*rocev2.Device
}

// Read reads the sources once.
func (s CongestionSources) Read() CongestionCounters {
	var c CongestionCounters
	for _, d := range s.Dispatchers {
		cs, err := d.Counters()
		if err != nil {
			continue
		}
		c.HasCE = true
		for _, v := range cs {
			c.RxPackets += v.Packets
			c.CEPackets += v.CE
		}
	}
	ceFromPorts := !c.HasCE
	for _, p := range s.Ports {
		rs, err := p.RingStats()
		if err != nil {
			continue
		}
		c.HasRing = true
		c.RingEntries += uint64(rs.RxRing)
		c.RingSize += uint64(rs.RingSize * rs.Queues)
		if ceFromPorts {
			st := p.Stats()
			c.HasCE = true
			c.RxPackets += st.RxPackets.Load()
			c.CEPackets += st.RxCE.Load()
		}
	}
	ceFromEngines := !c.HasCE
	for _, e := range s.Engines {
		st := e.Stats()
		c.HasRetransmit = true
		c.TxPackets += st.TxPackets.Load()
		c.Retransmit += st.Retransmits.Load()
		if ceFromEngines {
			c.HasCE = true
			c.RxPackets += st.RxPackets.Load()
			c.CEPackets += st.CERcvd.Load()
		}
	}
	return c
}
