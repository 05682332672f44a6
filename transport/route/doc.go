// Package route is a collective.Transport that sends to the ranks on this
// host over one transport (shared memory, transport/shm) and to every
// other rank over another (a network transport). Ordering per (peer, tag)
// holds because each peer is always reached through the same transport.
//
// OverSharedMemory is the usual assembly: given a network transport whose
// Info names each rank's host, it opens transport/shm between the ranks
// that share this rank's host and routes them over it.
package route
