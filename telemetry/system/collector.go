package system

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descPresent = prometheus.NewDesc("onet_system_source_present",
		"1 when the host offers this system source, 0 when it is absent (its series are then missing, not zero).",
		[]string{"source"}, nil)
	descCPU = prometheus.NewDesc("onet_system_cpu_utilization_ratio",
		"Busy fraction of each CPU since the previous scrape.", []string{"cpu"}, nil)
	descNUMAMem = prometheus.NewDesc("onet_system_numa_memory_bytes",
		"Memory of each NUMA node by kind (total, free, used).", []string{"node", "kind"}, nil)
	descNICNode = prometheus.NewDesc("onet_system_nic_numa_node",
		"NUMA node of each network interface that has one.", []string{"iface"}, nil)
	descGPUUtil = prometheus.NewDesc("onet_system_gpu_utilization_ratio",
		"GPU utilisation as nvidia-smi reports it (fraction of time a kernel ran).", []string{"gpu", "name"}, nil)
	descGPUMemUsed = prometheus.NewDesc("onet_system_gpu_memory_used_bytes",
		"GPU memory in use.", []string{"gpu", "name"}, nil)
	descGPUMemTotal = prometheus.NewDesc("onet_system_gpu_memory_total_bytes",
		"GPU memory in all.", []string{"gpu", "name"}, nil)
	descGPUPower = prometheus.NewDesc("onet_system_gpu_power_watts",
		"GPU power draw.", []string{"gpu", "name"}, nil)
	descNVLinkUp = prometheus.NewDesc("onet_system_gpu_nvlink_up",
		"1 when the NVLink is active, 0 when inactive.", []string{"gpu", "link"}, nil)
	descNVLinkSpeed = prometheus.NewDesc("onet_system_gpu_nvlink_speed_bytes_per_second",
		"Link speed of each active NVLink.", []string{"gpu", "link"}, nil)
	descPower = prometheus.NewDesc("onet_system_power_watts",
		"Mean RAPL power of each zone since the previous scrape.", []string{"zone"}, nil)
)

// CollectorOptions configure NewCollector.
type CollectorOptions struct {
	Options
	// ScrapeTimeout bounds the nvidia-smi runs of one scrape; 0 means 10s.
	ScrapeTimeout time.Duration
}

// Collector exposes a Sampler's snapshots as onet_system_* metrics, one
// Sample per scrape, so CPU utilisation and power cover the time between
// scrapes. Absent sources produce no series, and
// onet_system_source_present 0.
type Collector struct {
	s       *Sampler
	timeout time.Duration
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector and primes its Sampler, so the first
// scrape already has an interval.
func NewCollector(opts CollectorOptions) *Collector {
	c := &Collector{s: NewSampler(opts.Options), timeout: opts.ScrapeTimeout}
	if c.timeout == 0 {
		c.timeout = 10 * time.Second
	}
	c.s.Prime()
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPresent, descCPU, descNUMAMem, descNICNode, descGPUUtil,
		descGPUMemUsed, descGPUMemTotal, descGPUPower, descNVLinkUp, descNVLinkSpeed, descPower} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	snap := c.s.Sample(ctx)
	CollectSnapshot(&snap, ch)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// CollectSnapshot sends snap's metrics to ch (what Collect does after
// sampling); exported for callers that sample themselves.
func CollectSnapshot(snap *Snapshot, ch chan<- prometheus.Metric) {
	for _, src := range Sources {
		v := 0.0
		if snap.Present(src) {
			v = 1
		}
		gauge(ch, descPresent, v, string(src))
	}
	for _, c := range snap.CPU.Cores {
		gauge(ch, descCPU, c.Ratio, strconv.Itoa(c.CPU))
	}
	for _, n := range snap.NUMA.Nodes {
		node := strconv.Itoa(n.Node)
		gauge(ch, descNUMAMem, float64(n.TotalBytes), node, "total")
		gauge(ch, descNUMAMem, float64(n.FreeBytes), node, "free")
		gauge(ch, descNUMAMem, float64(n.UsedBytes), node, "used")
	}
	for _, n := range snap.NICs.NICs {
		if n.Absent == "" {
			gauge(ch, descNICNode, float64(n.Node), n.Iface)
		}
	}
	for _, g := range snap.GPU.GPUs {
		idx := strconv.Itoa(g.Index)
		if g.UtilizationRatio != nil {
			gauge(ch, descGPUUtil, *g.UtilizationRatio, idx, g.Name)
		}
		if g.MemoryUsedBytes != nil {
			gauge(ch, descGPUMemUsed, float64(*g.MemoryUsedBytes), idx, g.Name)
		}
		if g.MemoryTotalBytes != nil {
			gauge(ch, descGPUMemTotal, float64(*g.MemoryTotalBytes), idx, g.Name)
		}
		if g.PowerWatts != nil {
			gauge(ch, descGPUPower, *g.PowerWatts, idx, g.Name)
		}
	}
	for _, l := range snap.GPU.NVLinks {
		gpu, link := strconv.Itoa(l.GPU), strconv.Itoa(l.Link)
		up := 0.0
		if l.Active {
			up = 1
		}
		gauge(ch, descNVLinkUp, up, gpu, link)
		if l.GBps != nil {
			gauge(ch, descNVLinkSpeed, *l.GBps*1e9, gpu, link)
		}
	}
	for _, z := range snap.Power.Zones {
		gauge(ch, descPower, z.Watts, z.Zone)
	}
}
