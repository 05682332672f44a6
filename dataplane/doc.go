// Package dataplane moves UDP datagrams in batches: the Port contract, its
// AF_XDP implementation (kernel bypass through an XDP dispatcher and
// asavie/xdp sockets), the kernel UDP fallback (recvmmsg/sendmmsg, GSO/GRO),
// Ethernet/IPv4/IPv6/UDP frame building and parsing, and neighbour and route
// resolution through netlink.
//
// Everything above (the RoCEv2 engine, collectives) talks to a Port and does
// not care which implementation it got; Caps says what the port can see.
package dataplane
