// Package rdmatransport implements collective.Transport over RDMA reliable
// connections, written against the rdma verbs contract only: the software
// RoCEv2 engine (rdma/rocev2) and a verbs NIC serve alike.
//
// # Connection
//
// New makes one RC queue pair per peer on a shared protection domain and
// one completion queue, registers a ring of receive slots and a ring of
// send slots per peer, posts the receive slots, and publishes this rank's
// endpoint (GID, path MTU, host label and, per peer, QP number and first
// PSN) in the collective.Store under "<Prefix>/ep/<rank>". It reads every
// peer's endpoint, moves the queue pairs INIT → RTR → RTS (path MTU the
// smaller of both sides', ACK timeout and retries as perftest sets them),
// and meets the peers once more under "<Prefix>/ready/<rank>" so the first
// message never waits for a retransmission.
//
// # Protocol (after NCCL's net/IB transport)
//
// Every message of every kind but the rendezvous data is a SEND of one
// slot: a 40-byte header (kind, returned credits, length, tag, ids, remote
// address and key) and, for eager data, the payload.
//
//   - Eager: a message of at most Options.EagerMax bytes is copied into a
//     send slot and sent at once; the send is then done (the caller's
//     buffer is free, as after a socket write), and the slot comes back
//     when the peer acknowledges it. If a receive is posted for it, the
//     receiver copies it out and re-posts the slot; if not, the slot holds
//     it (no copy, no allocation) until Irecv takes it.
//   - Rendezvous: a larger message (or a small one when eager credits run
//     low) sends a ready-to-send (RTS: tag, length, send id). When the
//     receive matches it, the receiver registers its buffer (through a
//     bounded cache of registrations) and answers clear-to-send (CTS:
//     address, rkey, length, receive id, the send id echoed). The sender
//     RDMA-WRITEs straight from its buffer into the receiver's; the last
//     WRITE carries the receive id as immediate data, which completes the
//     receive (zero copy on both sides).
//   - Credits: the sender knows how many receive slots the peer has posted
//     for it and spends one per SEND or WRITE_WITH_IMM. The receiver
//     reports re-posted slots in the header of whatever it sends back, or
//     in a credit message when many have gathered or the sender is nearly
//     out. Eager data may not spend the last Options.Slots/4 credits, so
//     slots held by unexpected eager messages can never block control
//     messages (RTS, CTS, credits), and one credit is always kept for a
//     credit message so two ranks cannot both wait for the other's credits.
//   - Matching: per (peer, tag), messages meet receives in the order they
//     were sent and posted: every announcement (eager data or RTS) leaves
//     through one FIFO per peer, and RC delivers in order. Lengths are
//     compared when a message meets its receive: a difference completes the
//     receive (and, for a rendezvous, the send) with an error wrapping
//     collective.ErrSizeMismatch; nothing is written into the buffer.
//
// One progress goroutine blocks on the completion queue and does all of
// the above under the transport's lock; Isend and Irecv take the same lock
// and post at once when credits allow. On a device that lets waiters poll
// (rdma.Poller with an rdma.ReadyCQ: the RoCEv2 engine) a request's Wait
// runs the device's receive path and the completions itself, under the
// same lock, while the device allows it to spin and traffic keeps
// arriving; completions are always taken from the queue under the lock,
// so the progress goroutine and waiters never handle them out of order.
// Memory is bounded: slots are fixed, queues hold only what callers
// posted.
//
// # Ending
//
// Close sends a goodbye to every peer (waiting up to Options.CloseTimeout
// for it to be acknowledged), fails pending requests with
// collective.ErrClosed and releases the verbs resources (not the device).
// A peer that receives the goodbye, or whose queue pair fails (retry
// exceeded: the peer stopped answering), fails every pending and future
// request with that rank with collective.ErrPeerLost; eager messages that
// had already arrived can still be received.
package rdmatransport
