// Package bpf holds onetdp's XDP dispatcher: the C program (dispatcher.c),
// its bpf2go output (dispatcher_bpfel.go and dispatcher_bpfel.o, committed so
// that building needs no clang; regenerate with `go generate ./bpf/...`),
// and a typed Go API to load, attach and observe it. It imports only
// cilium/ebpf, golang.org/x/sys and the standard library.
//
// # What the program does
//
// onet_dispatch runs on every frame an interface receives and puts it in
// exactly one Class:
//
//   - ClassRoCEv2: a well-formed UDP datagram to port 4791;
//   - ClassOnet: a well-formed UDP datagram to the configured onet port
//     (DispatcherOptions.OnetPort / SetOnetPort, 0 = disabled);
//   - ClassOther: everything else, including malformed frames.
//
// Parsing: Ethernet, at most one 802.1Q or 802.1ad tag (a second tag makes
// the frame ClassOther), then IPv4 or IPv6. IPv4 needs version 4, an IHL of
// 5..15 whose header fits in the frame, and a total length between the
// header length and the frame length (Ethernet padding after it is fine).
// IPv4 fragments (MF set or a non-zero offset, so first fragments too) are
// ClassOther and their UDP header is not read. IPv6 needs version 6 and a
// payload length that fits; up to four hop-by-hop, routing or
// destination-options extension headers are skipped, any other next header
// (fragment, ESP, ...) or a fifth such header makes the frame ClassOther.
// UDP needs its 8-byte header and 8 <= UDP length <= IP payload length.
//
// Malformed frames (a check above fails) are counted in ClassOther with
// ParseErr, and passed to the kernel untouched: no flow entry, no fault
// drop, no redirect, no CE count. So the sum of Packets over all classes is
// the number of frames seen, and ParseErr <= Packets of ClassOther.
//
// For each frame, in order: Packets and Bytes of its class are counted (per
// CPU; Counters sums them); CE if the IP ECN field is 3; RoCEv2 and onet
// frames update their flow in an LRU table of 16384 flows (Flows), keyed by
// addresses, ports and, for RoCEv2 with at least 12 payload bytes, the
// destination QP from the BTH; then fault injection drops the frame
// (XDP_DROP, FaultDrop) with the class's probability (SetFault); then
// RoCEv2 and onet frames are redirected to the AF_XDP socket registered for
// the receive queue (RegisterSocket), or passed to the kernel and counted in
// RedirectFail when there is none or bpf_redirect_map fails. Delivered to
// a socket = Packets - FaultDrop - RedirectFail. Drops after a successful
// redirect (for example an empty fill ring) are the socket's to count
// (XDP_STATISTICS), not the dispatcher's.
//
// # Using it
//
// Attach loads and attaches the program (native XDP, falling back to
// generic in AttachAuto mode; Mode says which and why) through a BPF link
// that the kernel removes when the process exits; Close detaches it. Attach
// must run on an OS thread in the interface's network namespace. With
// DispatcherOptions.PinDir the maps are pinned on bpffs and re-used by the
// next Attach, so counters and flows survive a restart; Unpin removes them.
// Load loads without attaching; TestRun and Program let tests and
// benchmarks drive the program through BPF_PROG_TEST_RUN.
//
// A Dispatcher's methods may be called from any goroutine. They are
// control-plane calls (one or a few bpf(2) syscalls each), never meant for
// a per-packet path.
package bpf
