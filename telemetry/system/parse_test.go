package system

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestParseProcStatAndUtilization(t *testing.T) {
	a, err := ReadCPUTimes("testdata/proc-a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadCPUTimes("testdata/proc-b")
	if err != nil {
		t.Fatal(err)
	}
	want := []CPUTimes{{CPU: 0, User: 100, System: 100, Idle: 800}, {CPU: 1, User: 200, System: 100, Idle: 700}}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("proc-a: %+v, want %+v", a, want)
	}
	got := CPUUtilization(a, b)
	wantU := []CoreUtilization{{CPU: 0, Ratio: 0.5}, {CPU: 1, Ratio: 0.55}}
	if len(got) != 2 || got[0].CPU != 0 || got[1].CPU != 1 ||
		math.Abs(got[0].Ratio-0.5) > 1e-12 || math.Abs(got[1].Ratio-0.55) > 1e-12 {
		t.Fatalf("utilization %+v, want %+v", got, wantU)
	}
}

func TestCPUUtilizationLeavesOutCoresWithoutTicks(t *testing.T) {
	prev := []CPUTimes{{CPU: 0, User: 10, Idle: 10}, {CPU: 1, User: 10, Idle: 10}, {CPU: 2, User: 50, Idle: 50}}
	cur := []CPUTimes{{CPU: 0, User: 10, Idle: 10}, {CPU: 1, User: 10, Idle: 30}, {CPU: 2, User: 1, Idle: 1}, {CPU: 3, User: 5}}
	got := CPUUtilization(prev, cur)
	want := []CoreUtilization{{CPU: 1, Ratio: 0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v (no tick, backwards and new cores left out)", got, want)
	}
}

func TestParseProcStatErrors(t *testing.T) {
	for _, in := range []string{"cpu0 1 2 3\n", "cpux 1 2 3 4\n", "cpu0 1 2 -3 4\n", "cpu-1 1 2 3 4\n", "cpu0 1 2 3 4\ncpu0 1 2 3 4\n"} {
		if _, err := ParseProcStat([]byte(in)); err == nil {
			t.Errorf("ParseProcStat(%q): no error", in)
		}
	}
	if _, err := ReadCPUTimes(t.TempDir()); !errors.Is(err, ErrAbsent) {
		t.Errorf("missing /proc/stat: %v, want ErrAbsent", err)
	}
}

func TestReadNUMAMemory(t *testing.T) {
	got, err := ReadNUMAMemory("testdata/sys")
	if err != nil {
		t.Fatal(err)
	}
	want := []NodeMemory{
		{Node: 0, TotalBytes: 10447060 << 10, FreeBytes: 8228880 << 10, UsedBytes: 2218180 << 10},
		{Node: 1, TotalBytes: 2048 << 10, FreeBytes: 1024 << 10, UsedBytes: 1024 << 10},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := ReadNUMAMemory(t.TempDir()); !errors.Is(err, ErrAbsent) {
		t.Errorf("no node dir: %v, want ErrAbsent", err)
	}
	for _, in := range []string{"Node 0 MemTotal: 5 kB\n", "Node 0 MemTotal: 5 kB\nNode 1 MemFree: 1 kB\n",
		"Node 0 MemTotal: x kB\nNode 0 MemFree: 1 kB\n", "garbage\n", "Node 0 MemTotal: 5 MB\nNode 0 MemFree: 1 kB\n",
		"Node 0 MemTotal: 18446744073709551615 kB\nNode 0 MemFree: 1 kB\n"} {
		if _, err := ParseNodeMeminfo([]byte(in)); err == nil {
			t.Errorf("ParseNodeMeminfo(%q): no error", in)
		}
	}
}

func TestReadNICs(t *testing.T) {
	got, err := ReadNICs("testdata/sys", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []NICNode{
		{Iface: "ens3", Node: -1, Absent: "device reports no NUMA affinity (numa_node -1)"},
		{Iface: "eth0", Node: 1},
		{Iface: "veth0", Node: -1, Absent: "virtual device (no bus device)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if n, err := ReadNICNUMA("testdata/sys", "eth0"); err != nil || n != 1 {
		t.Errorf("eth0: %d, %v; want 1", n, err)
	}
	if _, err := ReadNICNUMA("testdata/sys", "nosuch0"); err == nil || errors.Is(err, ErrAbsent) {
		t.Errorf("missing interface: %v, want a non-absent error", err)
	}
	if _, err := ReadNICNUMA("testdata/sys", "../x"); err == nil {
		t.Error("path in interface name accepted")
	}
	if _, err := ReadNICs(t.TempDir(), nil); !errors.Is(err, ErrAbsent) {
		t.Errorf("no class/net: %v, want ErrAbsent", err)
	}
}

func f64(v float64) *float64 { return &v }
func u64(v uint64) *uint64   { return &v }

func TestParseNvidiaSMICSV(t *testing.T) {
	got, err := ParseNvidiaSMICSV(readFixture(t, "nvidia-smi.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := []GPU{
		{Index: 0, Name: "NVIDIA H100 80GB HBM3", UtilizationRatio: f64(0.37), MemoryUsedBytes: u64(1024 << 20), MemoryTotalBytes: u64(81559 << 20), PowerWatts: f64(113.52)},
		{Index: 1, Name: "NVIDIA H100 80GB HBM3", MemoryUsedBytes: u64(0), MemoryTotalBytes: u64(81559 << 20)},
		{Index: 2, Name: "Tesla T4, rev A", MemoryTotalBytes: u64(15360 << 20), PowerWatts: f64(27.10)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %s\nwant %s", dumpGPUs(got), dumpGPUs(want))
	}
	for _, in := range []string{"0, a, 1, 2, 3\n", "x, a, 1, 2, 3, 4\n", "0, a, -1, 2, 3, 4\n", "0, a, 1, NaN, 3, 4\n", "0, a, 1, 1e300, 3, 4\n", "0, \"a, 1, 2, 3, 4\n"} {
		if _, err := ParseNvidiaSMICSV([]byte(in)); err == nil {
			t.Errorf("ParseNvidiaSMICSV(%q): no error", in)
		}
	}
}

func dumpGPUs(gs []GPU) string {
	s := ""
	opt := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	optU := func(p *uint64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	for _, g := range gs {
		s += fmt.Sprintf("\n%d %q util=%s used=%s total=%s power=%s", g.Index, g.Name,
			opt(g.UtilizationRatio), optU(g.MemoryUsedBytes), optU(g.MemoryTotalBytes), opt(g.PowerWatts))
	}
	return s
}

func TestParseNVLinkStatus(t *testing.T) {
	got, err := ParseNVLinkStatus(readFixture(t, "nvlink-s.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []NVLink{{GPU: 0, Link: 0, Active: true, GBps: f64(26.562)}, {GPU: 0, Link: 1}, {GPU: 1, Link: 0, Active: true, GBps: f64(26.562)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := ParseNVLinkStatus([]byte("Link 0: 1 GB/s\n")); err == nil {
		t.Error("link before GPU accepted")
	}
}

func TestQueryGPUsAbsent(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := QueryGPUs(t.Context(), "", time.Second)
	var ae *AbsentError
	if !errors.As(err, &ae) || ae.Source != SourceGPU || ae.Reason != "nvidia-smi not found" {
		t.Fatalf("no nvidia-smi on PATH: %v, want absent \"nvidia-smi not found\"", err)
	}
	_, err = QueryGPUs(t.Context(), "testdata/bin/nvidia-smi-nodriver", time.Second)
	if !errors.As(err, &ae) || ae.Reason != "testdata/bin/nvidia-smi-nodriver exit 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running." {
		t.Fatalf("failing nvidia-smi: %v", err)
	}
}

func TestQueryGPUsFake(t *testing.T) {
	g, err := QueryGPUs(t.Context(), "testdata/bin/nvidia-smi", 5*time.Second)
	if err != nil || len(g) != 3 {
		t.Fatalf("fake nvidia-smi: %d GPUs, %v", len(g), err)
	}
	l, err := QueryNVLinks(t.Context(), "testdata/bin/nvidia-smi", 5*time.Second)
	if err != nil || len(l) != 3 {
		t.Fatalf("fake nvlink: %d links, %v", len(l), err)
	}
}

func TestRAPLWraparound(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeRAPL(t, a, "rapl-a.txt")
	writeRAPL(t, b, "rapl-b.txt")
	ra, err := ReadRAPL(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(ra) != 3 || ra[1].Zone != "package-0/dram" || ra[1].ID != "intel-rapl:0:0" || ra[2].Zone != "package-1" {
		t.Fatalf("zones %+v (mmio zone must be skipped, subzone named after parent)", ra)
	}
	rb, err := ReadRAPL(b)
	if err != nil {
		t.Fatal(err)
	}
	got := RAPLPower(ra, rb, 2*time.Second)
	want := []PowerZone{{"package-0", 50}, {"package-0/dram", 1}, {"package-1", 10}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("power %+v, want %+v", got, want)
	}
	if p := RAPLPower(ra, rb, 0); p != nil {
		t.Errorf("zero interval: %+v", p)
	}
	if _, err := ReadRAPL(t.TempDir()); !errors.Is(err, ErrAbsent) {
		t.Errorf("no powercap: %v, want ErrAbsent", err)
	}
}

func TestMemoryBandwidthAbsence(t *testing.T) {
	if got := MemoryBandwidthAbsence(t.TempDir()); got != "no uncore_imc perf PMU (virtual machine or unsupported CPU)" {
		t.Errorf("got %q", got)
	}
}

// TestParseNvidiaSMIRealH100 parses output captured from a real H100
// (driver with one GPU, no NVLink: `nvidia-smi nvlink -s` printed nothing).
func TestParseNvidiaSMIRealH100(t *testing.T) {
	got, err := ParseNvidiaSMICSV(readFixture(t, "nvidia-smi-h100.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := []GPU{{Index: 0, Name: "NVIDIA H100 80GB HBM3", UtilizationRatio: f64(0), MemoryUsedBytes: u64(0), MemoryTotalBytes: u64(81559 << 20), PowerWatts: f64(104.75)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %s\nwant %s", dumpGPUs(got), dumpGPUs(want))
	}
	if l, err := ParseNVLinkStatus(nil); err != nil || len(l) != 0 {
		t.Fatalf("empty nvlink -s: %v, %v", l, err)
	}
}
