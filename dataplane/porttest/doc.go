// Package porttest is an in-memory network of dataplane.Port implementations
// for unit tests of the layers above the data plane (the RoCEv2 engine,
// transports, collectives): no sockets, no privileges, deterministic loss and
// ECN CE marking driven by a seed.
//
// A Network connects the Ports created on it by their local address. Send
// copies each datagram into the destination port's bounded receive queue
// (a full queue is a counted drop; Send never blocks), after a seeded random
// draw decides whether the network loses it and whether an ECN-capable one
// arrives CE-marked.
package porttest
