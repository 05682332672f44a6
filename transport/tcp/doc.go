// Package tcp is a collective.Transport over kernel TCP: the fallback that
// works everywhere, and the large-message path of transport/adaptive.
//
// New opens a listener, publishes "address\nhost" under
// "<Prefix>rank/<r>" in the job's Store and builds a full mesh: each rank
// dials every higher rank and accepts the lower ones; a 24-byte handshake
// ("ONETTCP1", a per-job session id rank 0 publishes, rank, size) names the
// dialer. Sockets run with TCP_NODELAY and large buffers.
//
// On the wire every message is a 64-byte header (tag, length; big-endian
// uint64 each, zeros after) and the payload, padded to 64 bytes. The
// receive side of a connection is a non-blocking parser (recv.go) that
// matches incoming messages to posted receives by tag in order, reading
// large payloads straight into the receive buffer and small ones, several
// per read, through a staging buffer. Two kinds of goroutine drive it: the
// peer's reader goroutine, parked in the netpoller between bytes, and a
// goroutine that waits for one of the peer's receives, which polls the
// socket itself for up to Options.PollIdle without a byte arriving (one
// poller per transport, yielding between reads, to the other processes of
// its CPU too once idle for a while: spin.Idle) before it parks: a small
// message then reaches its waiter without a goroutine hand-off, which on a
// few shared cores cost most of a small collective's time. With one Go
// thread (launched ranks) it polls up to OneThreadPollIdle, and stops early
// when a writer goroutine waits for room, which only the netpoller wakes. A
// message that arrives before its receive is buffered (in pooled buffers,
// bufpool.go) up to Options.MaxUnexpectedBytes per peer, after which the
// connection is not read (TCP backpressure) until a matching receive is
// posted. Isend writes header and payload with one writev, first inline
// without blocking, and hands what is left to the peer's writer goroutine,
// which completes each send as soon as its last byte is in the socket;
// payloads are never copied.
//
// Sockets are opened on the goroutine that calls New, so New called inside
// lab.Host.Do puts the listener and every dialed connection in that host's
// network namespace.
package tcp
