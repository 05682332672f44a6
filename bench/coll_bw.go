package bench

import "github.com/opennetworks/onetdp/collective"

// CollBandwidth computes nccl-tests' algbw and busbw in GB/s (10^9 B/s)
// for an operation over n ranks that took sec seconds, where paramBytes is
// the per-rank parameter (count × type size: the whole buffer for
// allreduce, broadcast and reduce; one rank's block for allgather,
// reducescatter and alltoall).
func CollBandwidth(k collective.OpKind, paramBytes int64, n int, sec float64) (algBW, busBW float64) {
	if sec <= 0 || n <= 0 {
		return 0, 0
	}
	bytes := float64(paramBytes)
	switch k {
	case collective.OpAllGather, collective.OpReduceScatter, collective.OpAllToAll:
		bytes *= float64(n)
	}
	algBW = bytes / 1e9 / sec
	return algBW, algBW * CollBusFactor(k, n)
}

// CollBusFactor is nccl-tests' busbw/algbw factor for k over n ranks:
// 2(n-1)/n for allreduce, (n-1)/n for allgather, reducescatter and
// alltoall, 1 for broadcast and reduce.
func CollBusFactor(k collective.OpKind, n int) float64 {
	if n <= 0 {
		return 0
	}
	switch k {
	case collective.OpAllReduce:
		return 2 * float64(n-1) / float64(n)
	case collective.OpAllGather, collective.OpReduceScatter, collective.OpAllToAll:
		return float64(n-1) / float64(n)
	}
	return 1
}
