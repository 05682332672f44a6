// Package topo reads a host's network topology from the kernel through
// netlink: links, addresses, neighbours, routes (ECMP multipath next hops
// included) and, for a destination, the route and next hops the kernel
// would use (path analysis). A Snapshot can also carry the LLDP neighbour
// table of a telemetry/lldp Agent. Every type is a plain, JSON-friendly
// value: addresses are netip values or strings, never net.IP.
//
// Take reads the current network namespace or, with Options.Netns, the one
// at that path (without switching the calling thread: netlink sockets are
// opened in the target namespace).
package topo
