package telemetry

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
)

// LinkCollectorOptions configure NewLinkCollector. Owned by the caller,
// read once (Interfaces is copied).
type LinkCollectorOptions struct {
	// Interfaces are the interface names to report; empty means every
	// link in the namespace. An interface that does not exist (yet, or
	// any more) is left out of the scrape.
	Interfaces []string
	// Do, when set, runs its argument in the namespace to read (for
	// example lab.Host.Do or a function around nsenter); nil reads the
	// namespace of the scraping thread. Do is called once per scrape.
	Do func(func() error) error
	// Labels are constant labels on every metric.
	Labels prometheus.Labels
}

// LinkCollector reports the kernel's statistics of network interfaces,
// read through netlink at scrape time, labelled interface:
//
//	onet_link_rx_bytes_total, onet_link_rx_packets_total
//	onet_link_rx_dropped_total, onet_link_rx_errors_total
//	onet_link_tx_bytes_total, onet_link_tx_packets_total
//	onet_link_tx_dropped_total, onet_link_tx_errors_total
//
// Safe for concurrent scrapes.
type LinkCollector struct {
	names  []string
	do     func(func() error) error
	fields []counterField[netlink.LinkStatistics64]
}

var _ prometheus.Collector = (*LinkCollector)(nil)

var linkFields = []fieldSpec[netlink.LinkStatistics64]{
	{"rx_bytes_total", "Bytes the interface received (kernel statistics).", func(s *netlink.LinkStatistics64) uint64 { return s.RxBytes }},
	{"rx_packets_total", "Packets the interface received.", func(s *netlink.LinkStatistics64) uint64 { return s.RxPackets }},
	{"rx_dropped_total", "Received packets the interface dropped.", func(s *netlink.LinkStatistics64) uint64 { return s.RxDropped }},
	{"rx_errors_total", "Receive errors of the interface.", func(s *netlink.LinkStatistics64) uint64 { return s.RxErrors }},
	{"tx_bytes_total", "Bytes the interface sent.", func(s *netlink.LinkStatistics64) uint64 { return s.TxBytes }},
	{"tx_packets_total", "Packets the interface sent.", func(s *netlink.LinkStatistics64) uint64 { return s.TxPackets }},
	{"tx_dropped_total", "Packets the interface dropped on transmit.", func(s *netlink.LinkStatistics64) uint64 { return s.TxDropped }},
	{"tx_errors_total", "Transmit errors of the interface.", func(s *netlink.LinkStatistics64) uint64 { return s.TxErrors }},
}

// NewLinkCollector returns a collector of interface statistics.
func NewLinkCollector(opts LinkCollectorOptions) *LinkCollector {
	return &LinkCollector{
		names:  append([]string(nil), opts.Interfaces...),
		do:     opts.Do,
		fields: buildFields("link", linkFields, []string{"interface"}, opts.Labels),
	}
}

// Describe implements prometheus.Collector.
func (c *LinkCollector) Describe(ch chan<- *prometheus.Desc) { describeFields(ch, c.fields) }

type linkSample struct {
	name  string
	stats netlink.LinkStatistics64
}

// read returns the statistics of the configured links that exist.
func (c *LinkCollector) read() ([]linkSample, error) {
	var out []linkSample
	add := func(l netlink.Link) {
		a := l.Attrs()
		if a == nil || a.Statistics == nil {
			return
		}
		out = append(out, linkSample{a.Name, netlink.LinkStatistics64(*a.Statistics)})
	}
	if len(c.names) == 0 {
		links, err := netlink.LinkList()
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("list links: %w", err)
		}
		for _, l := range links {
			add(l)
		}
		return out, nil
	}
	for _, n := range c.names {
		l, err := netlink.LinkByName(n)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read link %s: %w", n, err)
		}
		add(l)
	}
	return out, nil
}

// Collect implements prometheus.Collector.
func (c *LinkCollector) Collect(ch chan<- prometheus.Metric) {
	var samples []linkSample
	var err error
	if c.do != nil {
		err = c.do(func() error {
			var rerr error
			samples, rerr = c.read()
			return rerr
		})
	} else {
		samples, err = c.read()
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.fields[0].desc, err)
		return
	}
	for i := range samples {
		emitCounters(ch, c.fields, &samples[i].stats, samples[i].name)
	}
}
