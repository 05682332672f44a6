// Package collectivetest is the test kit for package collective: an
// in-memory Transport group (NewGroup) with optional per-message delay,
// rendezvous sends and host assignment; the Transport conformance suite
// (TestTransport) every transport adapter runs; a sequential Reference
// of each operation; and helpers that build communicators and run
// randomized cases against the reference (Comms, Parallel, RunCase);
// OpenGroup, which opens a real transport's ranks together for tests; and
// the ping-pong and streaming benchmarks transports share (BenchPingPong,
// BenchStream).
package collectivetest
