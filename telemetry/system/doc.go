// Package system reads the host figures a training job cares about next to
// its network counters: per-core CPU utilisation (/proc/stat deltas), the
// NUMA node of each network interface and memory per NUMA node (sysfs),
// GPU utilisation, memory and power through nvidia-smi (and NVLink link
// state where the driver offers it), package power through RAPL powercap,
// and memory bandwidth (reported absent: the uncore perf counters are not
// read).
//
// Every source can be missing on a given host: a virtual NIC has no NUMA
// node, a VM has no RAPL, most hosts have no nvidia-smi. A missing source
// is reported as absent with a reason (AbsentError, the Absent fields of
// Snapshot, onet_system_source_present 0), never as zero.
//
// Readers take the /proc and /sys roots as paths so tests feed them
// fixture trees; Sampler keeps the previous CPU and RAPL samples so that
// each Sample reports rates over the time since the one before. Collector
// exposes a Sampler to Prometheus.
package system
