// Package cm sets up RC queue pair connections out of band, over TCP, the
// way perftest and rdma_cm users expect: each side tells the other its GID,
// QP number, first PSN and path MTU, and optionally the address, rkey and
// length of a buffer for one-sided verbs.
//
// # Protocol
//
// Both sides do the same thing (Exchange is symmetric): write one fixed-size
// message (60 bytes: magic "ONETCM", version, the Endpoint fields in network
// byte order, CRC-32; see wire.go), read the peer's, validate it, then write
// one ready byte and read the peer's. A peer that speaks another protocol
// (ErrBadMagic) or version (ErrVersion) is detected from the first 8 bytes,
// a damaged message by its CRC (ErrCorrupt), out-of-range fields by
// Validate (ErrInvalidEndpoint). A side that refuses the peer's endpoint
// sends a reject byte instead of ready, and the peer gets ErrRejected.
//
// # The ready byte and QP states
//
// A QP cannot reach RTR before the exchange: RTR needs the peer's QPN, PSN,
// GID and MTU. So the order on each side is
//
//  1. create the QP and move it to INIT; pick a random 24-bit PSN;
//  2. call Dial / Listen / Server.Accept / ExchangeWith with Options.OnRemote
//     set to a function that moves the QP to RTR with the remote endpoint;
//  3. the ready byte is sent only after OnRemote succeeded, so it says
//     "my QP is in RTR"; the call returns once the peer's ready byte arrived,
//     that is once both QPs are in RTR;
//  4. move the QP to RTS and start sending: the peer can already receive.
//
// Without OnRemote the ready byte only says "I have your endpoint", and the
// caller needs its own barrier after moving to RTR.
//
// # Timeouts and errors
//
// Every call is bounded by Options.Timeout (default 10s) and the context, and
// never hangs on a silent peer: running out of time gives ErrTimeout, which
// wraps context.DeadlineExceeded; a cancelled context gives context.Canceled;
// a peer that closes or resets mid-exchange gives ErrPeerClosed. Dial retries
// every Options.Retry (default 100ms) while nothing listens yet.
//
// This package does not import rdma: Endpoint is plain data that the rdma
// and rdma/rocev2 packages (or a libibverbs QP) fill in and read.
package cm
