package system

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RAPLZone is one powercap intel-rapl zone's energy counter at one time.
type RAPLZone struct {
	// ID is the sysfs directory name ("intel-rapl:0", "intel-rapl:0:1").
	ID string `json:"id"`
	// Zone is the label: the zone's name, prefixed by its parent's for a
	// subzone ("package-0", "package-0/dram").
	Zone             string `json:"zone"`
	EnergyUJ         uint64 `json:"energy_uj"`
	MaxEnergyRangeUJ uint64 `json:"max_energy_range_uj"`
}

// PowerZone is the mean power of one RAPL zone over an interval.
type PowerZone struct {
	Zone  string  `json:"zone"`
	Watts float64 `json:"watts"`
}

func readUint(p string) (uint64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", p, err)
	}
	return v, nil
}

// ReadRAPL reads every sysRoot/class/powercap/intel-rapl:* zone, sorted by
// ID. No powercap zones (a VM, a non-Intel/AMD CPU), or energy_uj that
// only root may read, is an AbsentError.
func ReadRAPL(sysRoot string) ([]RAPLZone, error) {
	dir := filepath.Join(sysRoot, "class", "powercap")
	paths, _ := filepath.Glob(filepath.Join(dir, "intel-rapl:*"))
	if len(paths) == 0 {
		return nil, absent(SourcePower, "no RAPL zones in "+dir)
	}
	sort.Strings(paths)
	names := make(map[string]string, len(paths))
	out := make([]RAPLZone, 0, len(paths))
	for _, p := range paths {
		id := filepath.Base(p)
		nb, err := os.ReadFile(filepath.Join(p, "name"))
		if err != nil {
			return nil, fmt.Errorf("rapl %s name: %w", id, err)
		}
		name := strings.TrimSpace(string(nb))
		names[id] = name
		zone := name
		if i := strings.LastIndexByte(id, ':'); strings.Count(id, ":") > 1 {
			if parent, ok := names[id[:i]]; ok {
				zone = parent + "/" + name
			}
		}
		e, err := readUint(filepath.Join(p, "energy_uj"))
		if errors.Is(err, fs.ErrPermission) {
			return nil, absent(SourcePower, "energy_uj readable by root only")
		}
		if err != nil {
			return nil, fmt.Errorf("rapl %s energy: %w", id, err)
		}
		m, err := readUint(filepath.Join(p, "max_energy_range_uj"))
		if err != nil {
			return nil, fmt.Errorf("rapl %s max range: %w", id, err)
		}
		out = append(out, RAPLZone{ID: id, Zone: zone, EnergyUJ: e, MaxEnergyRangeUJ: m})
	}
	return out, nil
}

// RAPLPower returns the mean power of each zone present in both samples
// over dt. A counter that went backwards wrapped at MaxEnergyRangeUJ; a
// zone whose counter exceeds its range (a bad read) is left out.
func RAPLPower(prev, cur []RAPLZone, dt time.Duration) []PowerZone {
	if dt <= 0 {
		return nil
	}
	byID := make(map[string]RAPLZone, len(prev))
	for _, p := range prev {
		byID[p.ID] = p
	}
	out := make([]PowerZone, 0, len(cur))
	for _, c := range cur {
		p, ok := byID[c.ID]
		if !ok {
			continue
		}
		var d uint64
		if c.EnergyUJ >= p.EnergyUJ {
			d = c.EnergyUJ - p.EnergyUJ
		} else {
			if c.MaxEnergyRangeUJ == 0 || p.EnergyUJ > c.MaxEnergyRangeUJ {
				continue
			}
			d = c.MaxEnergyRangeUJ - p.EnergyUJ + c.EnergyUJ
		}
		out = append(out, PowerZone{Zone: c.Zone, Watts: float64(d) / 1e6 / dt.Seconds()})
	}
	return out
}

// MemoryBandwidthAbsence says why memory bandwidth is not reported: the
// uncore IMC perf counters it needs are either missing (VMs) or present
// but not read by this package.
func MemoryBandwidthAbsence(sysRoot string) string {
	m, _ := filepath.Glob(filepath.Join(sysRoot, "bus", "event_source", "devices", "uncore_imc*"))
	if len(m) == 0 {
		return "no uncore_imc perf PMU (virtual machine or unsupported CPU)"
	}
	return "uncore_imc perf counters present but not read (not implemented)"
}
