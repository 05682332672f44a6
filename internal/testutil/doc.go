// Package testutil holds helpers shared by the project's tests: skipping with
// a reason when a privilege or kernel feature is missing, unique names for
// resources that concurrently running test packages create, and reading and
// writing classic pcap files and decoding them with tshark (pcap.go), so that
// tests cross-check frames against an independent dissector the same way.
//
// It imports only the standard library and golang.org/x/sys: BPF tests
// import it too.
package testutil
