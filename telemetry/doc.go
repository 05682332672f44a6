// Package telemetry turns every layer's plain Stats (the XDP dispatcher's
// per-class counters and flows, the ECN marker, dataplane ports, AF_XDP
// rings, the RoCEv2 engine, collectives) into Prometheus metrics read at
// scrape time, and adds what the layers do not know themselves: topology
// (links, addresses, neighbours, routes, LLDP) and system figures (CPU,
// NUMA, GPU, power). Metric names follow onet_<subsystem>_<thing>_<unit>.
//
// Only this package (and the agent above it) imports client_golang;
// the layers below keep plain structs of atomics.
//
// Latency distributions come in two forms. Layers below record into an
// internal/lathist.Histogram (lock-free, allocation-free, buckets of a
// native histogram of schema 2); RoCEv2Collector exports the engine's
// per-operation latencies (onet_rocev2_operation_latency_seconds{op}) as
// histograms carrying both native buckets (at most 19 % wide, for servers
// that ingest native histograms over protobuf) and classic buckets at
// powers of √2 (text format, histogram_quantile, onetdp top).
// CollectiveCollector exports collective.Stats with power-of-two classic
// buckets; LatencyHistogram is a native histogram for code that observes
// directly.
//
// AFXDPCollector adds ring gauges from AFXDPPort.RingStats:
// onet_afxdp_rx_ring_entries, _fill_ring_entries, _tx_ring_entries,
// _send_queue_depth_frames, _ring_size_entries, _umem_frames and
// _umem_free_frames.
//
// CongestionDetector judges successive readings (CongestionSources: the
// dispatchers' CE counts, AF_XDP rx ring occupancy, the engines'
// retransmissions) against CongestionThresholds, from deltas between
// samples rather than scrapes, and exports onet_congestion_ce_ratio,
// _ring_occupancy_ratio, _retransmit_ratio, _retransmits_per_second,
// _threshold{kind} and _warning{kind} (0/1 for ce, ring, retransmit).
// LLDPCollector exports an LLDP agent's counters and neighbour count
// (onet_lldp_*).
package telemetry
