// Package collpeers measures the peers `onetdp bench allreduce|allgather|
// broadcast --peers` compares against, in the same lab and over the same
// sizes as bench.Collective: Open MPI (btl tcp, one rank per lab host,
// launched by mpirun from h0 through an rsh agent that enters each host's
// network namespace) and Gloo (torch.distributed, one Python process per
// lab host). Both run float32 (sum, root 0), time each size as nccl-tests
// does and check one call, and their rows come back as bench.CollResult
// with Peer set.
package collpeers
