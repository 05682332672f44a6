// Package bench measures ports, verbs and collectives the way their users
// measure them, and prints the results in the formats those users know:
// perftest (ib_send_lat, ib_write_bw) and nccl-tests (all_reduce_perf).
//
// The port and RDMA measurements take any dataplane.Port pair or RoCEv2
// engines, so the same code produces the AF_XDP row and the kernel-UDP row
// of a table from one run. The collective sweep runs either every rank of
// a group in this process (Collective) or this process's rank of a job a
// launcher started (CollectiveRank); both time, check and report alike.
package bench
