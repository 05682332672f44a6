// Package shm is a collective.Transport between the ranks of one host
// through shared memory: the intra-host level of the hierarchical
// allreduce (issue 5). transport/route joins it with a network transport
// for the ranks on other hosts.
//
// Rings. Per ordered pair of local ranks (a rank and itself included)
// there is one single-producer single-consumer byte ring: a file under
// Options.Dir (/dev/shm) of one header page and RingBytes of data, created
// by the receiver and mapped by both with mmap(MAP_SHARED). Files are
// named "onet-<prefix><job id>-<src>-<dst>" (non-alphanumerics of the
// prefix as '_'); the job id is drawn by the
// lowest local rank and published in the Store, and the receiver publishes
// each ring there once it exists. The sender maps it, marks it attached
// and unlinks it; the receiver waits for the attach and unlinks it too,
// so once New returns nothing is left in Dir, and a crash afterwards
// leaves nothing behind either (the pages live as long as a mapping).
//
// Head (bytes written) and tail (bytes consumed) are monotonic uint64s on
// their own cache lines, each written by one side only through sync/atomic
// on pointers into the mapping; see ring for the memory-model argument.
// A message is a record: 16 bytes of header (tag, length; little-endian),
// the payload, padding to 16 bytes. Messages larger than the ring stream
// through it: both sides publish their position every 128 KiB, so the
// producer's copy in and the consumer's copy out overlap.
//
// Progress. Per peer a receive goroutine reads records and matches them
// to posted receives per tag in order (as transport/tcp), copying the
// payload straight from the ring into the receive buffer; a message that
// arrives first is buffered up to MaxUnexpectedBytes per peer, beyond
// which it stays in the ring (the sender then waits for space). Isend
// writes inline when the ring is idle and has room, else a per-peer writer
// goroutine streams it. A waiting side polls its ring word 64 times
// (yielding in between), then sleeps on a futex in the ring header (a
// shared futex, so it works across processes) that the other side wakes
// when it sees the waiter flag; sleeps are bounded at 20 ms so closed
// flags and this transport's own state are rechecked.
//
// Close and failure. Close sets closed flags in every ring header and
// wakes the peers: they deliver what was already in the ring, then fail
// pending and later requests toward this rank with ErrPeerLost. A process
// that dies without closing stops bumping its heartbeat word (every
// 100 ms); after PeerTimeout its peers fail it with ErrPeerLost.
package shm
