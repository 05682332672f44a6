// Package telemetry turns every layer's plain Stats (the XDP dispatcher's
// per-class counters and flows, the ECN marker, dataplane ports, AF_XDP
// rings, the RoCEv2 engine, collectives) into Prometheus metrics read at
// scrape time, and adds what the layers do not know themselves: topology
// (links, addresses, neighbours, routes, LLDP) and system figures (CPU,
// NUMA, GPU, power). Metric names follow onet_<subsystem>_<thing>_<unit>.
//
// Only this package (and the agent above it) imports client_golang;
// the layers below keep plain structs of atomics.
package telemetry
