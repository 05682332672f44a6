package system

import (
	"context"
	"sync"
	"time"
)

// Options configure a Sampler. The zero value reads the real host.
type Options struct {
	// ProcRoot is where procfs is mounted; "" means /proc.
	ProcRoot string
	// SysRoot is where sysfs is mounted; "" means /sys.
	SysRoot string
	// NvidiaSMI is the nvidia-smi binary, a path or a name looked up on
	// PATH; "" means "nvidia-smi".
	NvidiaSMI string
	// Ifaces limits the NIC NUMA figures to these interfaces; empty
	// means every interface under SysRoot/class/net.
	Ifaces []string
	// CommandTimeout bounds each nvidia-smi run; 0 means 5s.
	CommandTimeout time.Duration
	// NoGPU skips nvidia-smi entirely (reported absent, "disabled").
	NoGPU bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// CPUReport is per-core utilisation over Snapshot.Interval.
type CPUReport struct {
	Cores  []CoreUtilization `json:"cores,omitempty"`
	Absent string            `json:"absent,omitempty"`
}

// NUMAReport is memory per NUMA node.
type NUMAReport struct {
	Nodes  []NodeMemory `json:"nodes,omitempty"`
	Absent string       `json:"absent,omitempty"`
}

// NICReport is the NUMA node of each interface; an interface without one
// says why in its own Absent field.
type NICReport struct {
	NICs   []NICNode `json:"nics,omitempty"`
	Absent string    `json:"absent,omitempty"`
}

// GPUReport is what nvidia-smi says; NVLinkAbsent is set when the GPUs
// have no NVLink or the driver does not report it.
type GPUReport struct {
	GPUs         []GPU    `json:"gpus,omitempty"`
	Absent       string   `json:"absent,omitempty"`
	NVLinks      []NVLink `json:"nvlinks,omitempty"`
	NVLinkAbsent string   `json:"nvlink_absent,omitempty"`
}

// PowerReport is RAPL power per zone over Snapshot.Interval.
type PowerReport struct {
	Zones  []PowerZone `json:"zones,omitempty"`
	Absent string      `json:"absent,omitempty"`
}

// MemoryBandwidthReport is always absent for now (see
// MemoryBandwidthAbsence); the field exists so that the absence shows.
type MemoryBandwidthReport struct {
	BytesPerSecond *float64 `json:"bytes_per_second,omitempty"`
	Absent         string   `json:"absent,omitempty"`
}

// Snapshot is one reading of every source. Each report's Absent is empty
// when the source is present and says why otherwise.
type Snapshot struct {
	Time time.Time `json:"time"`
	// Interval is the time since the previous sample, over which CPU
	// utilisation and power are averaged; 0 for the first sample.
	Interval        time.Duration         `json:"interval_ns"`
	CPU             CPUReport             `json:"cpu"`
	NUMA            NUMAReport            `json:"numa"`
	NICs            NICReport             `json:"nic_numa"`
	GPU             GPUReport             `json:"gpu"`
	Power           PowerReport           `json:"power"`
	MemoryBandwidth MemoryBandwidthReport `json:"memory_bandwidth"`
}

// Present reports whether src has figures in s.
func (s *Snapshot) Present(src Source) bool {
	switch src {
	case SourceCPU:
		return s.CPU.Absent == ""
	case SourceNUMA:
		return s.NUMA.Absent == ""
	case SourceNIC:
		for _, n := range s.NICs.NICs {
			if n.Absent == "" {
				return true
			}
		}
		return false
	case SourceGPU:
		return s.GPU.Absent == ""
	case SourceNVLink:
		return s.GPU.NVLinkAbsent == ""
	case SourcePower:
		return s.Power.Absent == ""
	case SourceMemoryBandwidth:
		return s.MemoryBandwidth.Absent == ""
	}
	return false
}

// Sampler reads snapshots and keeps the previous CPU and RAPL counters so
// that each Sample reports rates since the one before. Its methods may be
// called from any goroutine; samples are serialised.
type Sampler struct {
	opts Options

	mu       sync.Mutex
	prevTime time.Time
	prevCPU  []CPUTimes
	prevRAPL []RAPLZone
}

// NewSampler returns a Sampler over opts; it reads nothing until Prime or
// Sample.
func NewSampler(opts Options) *Sampler {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	if opts.NvidiaSMI == "" {
		opts.NvidiaSMI = "nvidia-smi"
	}
	if opts.CommandTimeout == 0 {
		opts.CommandTimeout = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Sampler{opts: opts}
}

// Prime records the CPU and RAPL counters the next Sample measures from.
func (s *Sampler) Prime() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prime()
}

func (s *Sampler) prime() {
	s.prevTime = s.opts.Now()
	s.prevCPU, _ = ReadCPUTimes(s.opts.ProcRoot)
	s.prevRAPL, _ = ReadRAPL(s.opts.SysRoot)
}

const noPrevious = "no previous sample to measure an interval from"

// Sample reads every source. CPU utilisation and power cover the time
// since the previous Sample or Prime; without one they are absent.
func (s *Sampler) Sample(ctx context.Context) Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	snap := Snapshot{Time: now}
	if !s.prevTime.IsZero() {
		snap.Interval = now.Sub(s.prevTime)
	}

	cpu, err := ReadCPUTimes(s.opts.ProcRoot)
	switch {
	case err != nil:
		snap.CPU.Absent = absentReason(err)
	case s.prevCPU == nil:
		snap.CPU.Absent = noPrevious
	default:
		snap.CPU.Cores = CPUUtilization(s.prevCPU, cpu)
		if len(snap.CPU.Cores) == 0 {
			snap.CPU.Absent = "no clock tick elapsed since the previous sample"
		}
	}
	s.prevCPU = cpu

	rapl, err := ReadRAPL(s.opts.SysRoot)
	switch {
	case err != nil:
		snap.Power.Absent = absentReason(err)
	case s.prevRAPL == nil || snap.Interval <= 0:
		snap.Power.Absent = noPrevious
	default:
		snap.Power.Zones = RAPLPower(s.prevRAPL, rapl, snap.Interval)
		if len(snap.Power.Zones) == 0 {
			snap.Power.Absent = "no RAPL zone readable twice"
		}
	}
	s.prevRAPL = rapl
	s.prevTime = now

	if nodes, err := ReadNUMAMemory(s.opts.SysRoot); err != nil {
		snap.NUMA.Absent = absentReason(err)
	} else {
		snap.NUMA.Nodes = nodes
	}
	if nics, err := ReadNICs(s.opts.SysRoot, s.opts.Ifaces); err != nil {
		snap.NICs.Absent = absentReason(err)
	} else {
		snap.NICs.NICs = nics
		if !snap.Present(SourceNIC) && snap.NICs.Absent == "" {
			snap.NICs.Absent = "no interface has a NUMA node"
		}
	}

	if s.opts.NoGPU {
		snap.GPU.Absent, snap.GPU.NVLinkAbsent = "disabled", "disabled"
	} else if gpus, err := QueryGPUs(ctx, s.opts.NvidiaSMI, s.opts.CommandTimeout); err != nil {
		snap.GPU.Absent = absentReason(err)
		snap.GPU.NVLinkAbsent = "no GPU"
	} else {
		snap.GPU.GPUs = gpus
		if links, err := QueryNVLinks(ctx, s.opts.NvidiaSMI, s.opts.CommandTimeout); err != nil {
			snap.GPU.NVLinkAbsent = absentReason(err)
		} else {
			snap.GPU.NVLinks = links
		}
	}

	snap.MemoryBandwidth.Absent = MemoryBandwidthAbsence(s.opts.SysRoot)
	return snap
}
