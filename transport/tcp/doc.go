// Package tcp is a collective.Transport over kernel TCP: the fallback that
// works everywhere, and the large-message path of transport/adaptive.
//
// New opens a listener, publishes "address\nhost" under
// "<Prefix>rank/<r>" in the job's Store and builds a full mesh: each rank
// dials every higher rank and accepts the lower ones; a 24-byte handshake
// ("ONETTCP1", a per-job session id rank 0 publishes, rank, size) names the
// dialer. Sockets run with TCP_NODELAY and large buffers.
//
// On the wire every message is a 16-byte header (tag, length; big-endian
// uint64 each) and the payload. Per peer one reader goroutine matches
// incoming messages to posted receives by tag in order, reading the payload
// straight into the receive buffer; a message that arrives before its
// receive is buffered up to Options.MaxUnexpectedBytes per peer, after
// which the reader stops reading that connection (TCP backpressure) until a
// matching receive is posted. Isend writes header and payload with one
// writev, first inline without blocking, and hands what is left to the
// peer's writer goroutine; payloads are never copied.
//
// Sockets are opened on the goroutine that calls New, so New called inside
// lab.Host.Do puts the listener and every dialed connection in that host's
// network namespace.
package tcp
