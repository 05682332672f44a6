package system

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fixtureHost builds a proc and sys root from testdata at its first
// sample and returns a function that advances it to the second.
func fixtureHost(t *testing.T) (proc, sys string, advance func()) {
	t.Helper()
	proc, sys = t.TempDir(), t.TempDir()
	copyFile(t, "testdata/proc-a/stat", filepath.Join(proc, "stat"))
	for _, p := range []string{"devices/system/node/node0/meminfo", "devices/system/node/node1/meminfo",
		"class/net/eth0/device/numa_node", "class/net/veth0/mtu", "class/net/ens3/device/numa_node"} {
		copyFile(t, filepath.Join("testdata/sys", p), filepath.Join(sys, p))
	}
	writeRAPL(t, sys, "rapl-a.txt")
	return proc, sys, func() {
		copyFile(t, "testdata/proc-b/stat", filepath.Join(proc, "stat"))
		writeRAPL(t, sys, "rapl-b.txt")
	}
}

func stepClock(start time.Time, step time.Duration) func() time.Time {
	now := start
	return func() time.Time { t := now; now = now.Add(step); return t }
}

func TestSamplerFixtureHost(t *testing.T) {
	proc, sys, advance := fixtureHost(t)
	s := NewSampler(Options{ProcRoot: proc, SysRoot: sys, NvidiaSMI: "testdata/bin/nvidia-smi",
		Now: stepClock(time.Unix(1000, 0), 2*time.Second)})
	first := s.Sample(t.Context())
	if first.CPU.Absent != noPrevious || first.Power.Absent != noPrevious || first.Interval != 0 {
		t.Fatalf("first sample: cpu %q power %q interval %v; want absent for want of an interval", first.CPU.Absent, first.Power.Absent, first.Interval)
	}
	advance()
	snap := s.Sample(t.Context())
	if snap.Interval != 2*time.Second || len(snap.CPU.Cores) != 2 || len(snap.Power.Zones) != 3 ||
		len(snap.NUMA.Nodes) != 2 || len(snap.NICs.NICs) != 3 || len(snap.GPU.GPUs) != 3 || len(snap.GPU.NVLinks) != 3 {
		t.Fatalf("second sample: %+v", snap)
	}
	for _, src := range Sources {
		if want := src != SourceMemoryBandwidth; snap.Present(src) != want {
			t.Errorf("present(%s) = %v, want %v", src, !want, want)
		}
	}
}

func TestSamplerAbsentHost(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	s := NewSampler(Options{ProcRoot: t.TempDir(), SysRoot: t.TempDir()})
	s.Prime()
	snap := s.Sample(t.Context())
	want := map[Source]string{
		SourceCPU:             "no " + filepath.Join(s.opts.ProcRoot, "stat"),
		SourceNUMA:            "no " + filepath.Join(s.opts.SysRoot, "devices/system/node") + "/node*/meminfo (kernel without NUMA)",
		SourceNIC:             "no " + filepath.Join(s.opts.SysRoot, "class/net"),
		SourceGPU:             "nvidia-smi not found",
		SourceNVLink:          "no GPU",
		SourcePower:           "no RAPL zones in " + filepath.Join(s.opts.SysRoot, "class/powercap"),
		SourceMemoryBandwidth: "no uncore_imc perf PMU (virtual machine or unsupported CPU)",
	}
	got := map[Source]string{SourceCPU: snap.CPU.Absent, SourceNUMA: snap.NUMA.Absent, SourceNIC: snap.NICs.Absent,
		SourceGPU: snap.GPU.Absent, SourceNVLink: snap.GPU.NVLinkAbsent, SourcePower: snap.Power.Absent,
		SourceMemoryBandwidth: snap.MemoryBandwidth.Absent}
	for src, w := range want {
		if got[src] != w {
			t.Errorf("%s absent %q, want %q", src, got[src], w)
		}
		if snap.Present(src) {
			t.Errorf("%s present on an empty host", src)
		}
	}
}

func TestCollectorExactOutput(t *testing.T) {
	proc, sys, advance := fixtureHost(t)
	c := NewCollector(CollectorOptions{Options: Options{ProcRoot: proc, SysRoot: sys,
		NvidiaSMI: "testdata/bin/nvidia-smi", Now: stepClock(time.Unix(1000, 0), 2*time.Second)}})
	advance()
	want := `
# HELP onet_system_cpu_utilization_ratio Busy fraction of each CPU since the previous scrape.
# TYPE onet_system_cpu_utilization_ratio gauge
onet_system_cpu_utilization_ratio{cpu="0"} 0.5
onet_system_cpu_utilization_ratio{cpu="1"} 0.55
# HELP onet_system_gpu_memory_total_bytes GPU memory in all.
# TYPE onet_system_gpu_memory_total_bytes gauge
onet_system_gpu_memory_total_bytes{gpu="0",name="NVIDIA H100 80GB HBM3"} 8.5520809984e+10
onet_system_gpu_memory_total_bytes{gpu="1",name="NVIDIA H100 80GB HBM3"} 8.5520809984e+10
onet_system_gpu_memory_total_bytes{gpu="2",name="Tesla T4, rev A"} 1.6106127360e+10
# HELP onet_system_gpu_memory_used_bytes GPU memory in use.
# TYPE onet_system_gpu_memory_used_bytes gauge
onet_system_gpu_memory_used_bytes{gpu="0",name="NVIDIA H100 80GB HBM3"} 1.073741824e+09
onet_system_gpu_memory_used_bytes{gpu="1",name="NVIDIA H100 80GB HBM3"} 0
# HELP onet_system_gpu_nvlink_speed_bytes_per_second Link speed of each active NVLink.
# TYPE onet_system_gpu_nvlink_speed_bytes_per_second gauge
onet_system_gpu_nvlink_speed_bytes_per_second{gpu="0",link="0"} 2.6562e+10
onet_system_gpu_nvlink_speed_bytes_per_second{gpu="1",link="0"} 2.6562e+10
# HELP onet_system_gpu_nvlink_up 1 when the NVLink is active, 0 when inactive.
# TYPE onet_system_gpu_nvlink_up gauge
onet_system_gpu_nvlink_up{gpu="0",link="0"} 1
onet_system_gpu_nvlink_up{gpu="0",link="1"} 0
onet_system_gpu_nvlink_up{gpu="1",link="0"} 1
# HELP onet_system_gpu_power_watts GPU power draw.
# TYPE onet_system_gpu_power_watts gauge
onet_system_gpu_power_watts{gpu="0",name="NVIDIA H100 80GB HBM3"} 113.52
onet_system_gpu_power_watts{gpu="2",name="Tesla T4, rev A"} 27.1
# HELP onet_system_gpu_utilization_ratio GPU utilisation as nvidia-smi reports it (fraction of time a kernel ran).
# TYPE onet_system_gpu_utilization_ratio gauge
onet_system_gpu_utilization_ratio{gpu="0",name="NVIDIA H100 80GB HBM3"} 0.37
# HELP onet_system_nic_numa_node NUMA node of each network interface that has one.
# TYPE onet_system_nic_numa_node gauge
onet_system_nic_numa_node{iface="eth0"} 1
# HELP onet_system_numa_memory_bytes Memory of each NUMA node by kind (total, free, used).
# TYPE onet_system_numa_memory_bytes gauge
onet_system_numa_memory_bytes{kind="free",node="0"} 8.42637312e+09
onet_system_numa_memory_bytes{kind="free",node="1"} 1.048576e+06
onet_system_numa_memory_bytes{kind="total",node="0"} 1.069778944e+10
onet_system_numa_memory_bytes{kind="total",node="1"} 2.097152e+06
onet_system_numa_memory_bytes{kind="used",node="0"} 2.27141632e+09
onet_system_numa_memory_bytes{kind="used",node="1"} 1.048576e+06
# HELP onet_system_power_watts Mean RAPL power of each zone since the previous scrape.
# TYPE onet_system_power_watts gauge
onet_system_power_watts{zone="package-0"} 50
onet_system_power_watts{zone="package-0/dram"} 1
onet_system_power_watts{zone="package-1"} 10
# HELP onet_system_source_present 1 when the host offers this system source, 0 when it is absent (its series are then missing, not zero).
# TYPE onet_system_source_present gauge
onet_system_source_present{source="cpu"} 1
onet_system_source_present{source="gpu"} 1
onet_system_source_present{source="memory_bandwidth"} 0
onet_system_source_present{source="nic_numa"} 1
onet_system_source_present{source="numa"} 1
onet_system_source_present{source="nvlink"} 1
onet_system_source_present{source="power"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if probs, err := testutil.CollectAndLint(c); err != nil || len(probs) != 0 {
		t.Errorf("lint: %v %+v", err, probs)
	}
}

func TestCollectorAbsentHostHasOnlyPresence(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	c := NewCollector(CollectorOptions{Options: Options{ProcRoot: t.TempDir(), SysRoot: t.TempDir()}})
	want := `
# HELP onet_system_source_present 1 when the host offers this system source, 0 when it is absent (its series are then missing, not zero).
# TYPE onet_system_source_present gauge
onet_system_source_present{source="cpu"} 0
onet_system_source_present{source="gpu"} 0
onet_system_source_present{source="memory_bandwidth"} 0
onet_system_source_present{source="nic_numa"} 0
onet_system_source_present{source="numa"} 0
onet_system_source_present{source="nvlink"} 0
onet_system_source_present{source="power"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != len(Sources) {
		t.Errorf("%d series on an empty host, want %d", n, len(Sources))
	}
}

// TestLiveHost reads this machine's real /proc and /sys and checks only
// what must hold anywhere.
func TestLiveHost(t *testing.T) {
	s := NewSampler(Options{})
	s.Prime()
	time.Sleep(200 * time.Millisecond)
	snap := s.Sample(t.Context())
	if snap.CPU.Absent != "" {
		t.Fatalf("cpu absent on Linux: %s", snap.CPU.Absent)
	}
	if len(snap.CPU.Cores) != runtime.NumCPU() {
		t.Errorf("%d cores, runtime.NumCPU() = %d", len(snap.CPU.Cores), runtime.NumCPU())
	}
	for _, c := range snap.CPU.Cores {
		if c.Ratio < 0 || c.Ratio > 1 {
			t.Errorf("cpu%d utilization %v outside [0,1]", c.CPU, c.Ratio)
		}
	}
	if snap.NUMA.Absent == "" {
		for _, n := range snap.NUMA.Nodes {
			if n.TotalBytes == 0 || n.FreeBytes > n.TotalBytes {
				t.Errorf("node %d: %+v", n.Node, n)
			}
		}
	}
	lo := false
	for _, n := range snap.NICs.NICs {
		if n.Iface == "lo" {
			lo = true
			if n.Absent != "virtual device (no bus device)" {
				t.Errorf("lo: %+v, want absent as a virtual device", n)
			}
		}
	}
	if !lo {
		t.Errorf("no lo among %+v", snap.NICs.NICs)
	}
	if os.Getenv("ONET_EXPECT_GPU") == "1" && (snap.GPU.Absent != "" || snap.GPU.GPUs[0].MemoryTotalBytes == nil) {
		t.Errorf("ONET_EXPECT_GPU=1 but gpu absent (%s) or without memory: %+v", snap.GPU.Absent, snap.GPU.GPUs)
	}
	for _, g := range snap.GPU.GPUs {
		if g.UtilizationRatio != nil && (*g.UtilizationRatio < 0 || *g.UtilizationRatio > 1) {
			t.Errorf("gpu %d utilization %v", g.Index, *g.UtilizationRatio)
		}
		if g.MemoryUsedBytes != nil && g.MemoryTotalBytes != nil && *g.MemoryUsedBytes > *g.MemoryTotalBytes {
			t.Errorf("gpu %d memory used %d > total %d", g.Index, *g.MemoryUsedBytes, *g.MemoryTotalBytes)
		}
	}
	for _, z := range snap.Power.Zones {
		if z.Watts < 0 || z.Watts > 10000 {
			t.Errorf("power %s %v W", z.Zone, z.Watts)
		}
	}
	t.Logf("cpu %v numa %q nic %q gpu %d (%q) nvlink %q power %d (%q) membw %q", snap.CPU.Cores, snap.NUMA.Absent,
		snap.NICs.Absent, len(snap.GPU.GPUs), snap.GPU.Absent, snap.GPU.NVLinkAbsent, len(snap.Power.Zones),
		snap.Power.Absent, snap.MemoryBandwidth.Absent)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(CollectorOptions{})); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
}
