// Package lab builds test networks on one machine: N hosts, each a network
// namespace bind-mounted at /run/netns/<name>-h<i> with one interface eth0,
// joined by a single veth pair (two hosts) or by a bridge br0 in its own
// namespace <name>-sw (three or more hosts, one veth per host, switch side
// p<i>). Nothing is created in the caller's namespace, so lab traffic never
// touches the machine's real network. Addresses come from 198.18.0.0/15 (and
// fd00:198:18::/48 for IPv6) only.
//
// Everything is done through netlink (vishvananda/netlink and netns), never
// the ip binary, so the package works on machines without iproute2; the
// namespaces are still visible to `ip netns` where it exists.
//
// Up is idempotent and repairs a lab left half-built by a crash; Down removes
// every namespace of a lab; Status reads a lab back from the kernel. Host.Do
// runs a function inside a host's namespace (open sockets there, use them
// anywhere) and Host.Command starts a process inside it.
//
// The wire is quiet: the bridge has STP and multicast snooping off (it floods
// multicast and sends no queries; ports forward at once), and with IPv6 off it
// is disabled in every lab namespace, so no packet crosses a link until a
// test sends one (with IPv6 on, a few MLD reports follow link up). Host MACs
// are 02:xx:xx:xx:00:<i>, derived from the lab name, so they survive a rebuild.
//
// MTU: native XDP on a veth fails with ERANGE when the MTU exceeds 3506 unless
// the program is frags-aware; Options.Warnings reports it, Up does not refuse.
//
// All functions need CAP_SYS_ADMIN and CAP_NET_ADMIN (root). The subpackage
// labtest builds a lab per test and removes it in t.Cleanup.
package lab
