// Package adaptive is the seed's "adaptive protocol selection": one
// collective.Transport over two, sending each message over the one that is
// faster for its size. Messages shorter than the threshold go over Small
// (say RoCEv2 over AF_XDP: low latency), the others over Large (say kernel
// TCP with GSO/GRO: high bandwidth). Sender and receiver both decide by the
// length of the message and of the receive buffer, which the Transport
// contract requires to be equal, so matching stays consistent; a receive
// whose length falls on the other side of the threshold than its message's
// never matches it (no ErrSizeMismatch across the threshold).
//
// With Options.Threshold 0, New measures: ranks 0 and 1 ping-pong over both
// transports at 64 B..4 MiB (a fixed schedule of a few round trips per size,
// well under a second on a LAN), rank 0 picks the smallest size from which
// Large is at least as fast at every larger size, and sends the result to
// every rank over Small so that all ranks agree.
package adaptive
