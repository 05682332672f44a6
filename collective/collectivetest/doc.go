// Package collectivetest is the test kit for package collective: an
// in-memory Transport group (NewGroup) with optional per-message delay,
// rendezvous sends and host assignment; the Transport conformance suite
// (TestTransport) every transport adapter runs; a sequential Reference
// of each operation; and helpers that build communicators and run
// randomized cases against the reference (Comms, Parallel, RunCase).
package collectivetest
