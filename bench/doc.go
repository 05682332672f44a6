// Package bench measures ports and (later) verbs and collectives the way
// their users measure them, and prints the results in the formats those
// users know: perftest (ib_send_lat, ib_write_bw) and nccl-tests.
//
// The measurements take any dataplane.Port pair, so the same code produces
// the AF_XDP row and the kernel-UDP row of a table from one run.
package bench
