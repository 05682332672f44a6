// Package route is a collective.Transport that sends to the ranks on this
// host over one transport (shared memory, transport/shm) and to every
// other rank over another (a network transport). Ordering per (peer, tag)
// holds because each peer is always reached through the same transport.
package route
