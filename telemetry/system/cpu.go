package system

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPUTimes is one cpuN line of /proc/stat, in USER_HZ ticks. Guest time is
// already included in User and Nice by the kernel and is not read.
type CPUTimes struct {
	CPU                                                   int
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

func (t CPUTimes) total() uint64 {
	return t.User + t.Nice + t.System + t.Idle + t.IOWait + t.IRQ + t.SoftIRQ + t.Steal
}

func (t CPUTimes) idle() uint64 { return t.Idle + t.IOWait }

// CoreUtilization is the busy fraction of one CPU over an interval.
type CoreUtilization struct {
	CPU   int     `json:"cpu"`
	Ratio float64 `json:"utilization_ratio"`
}

// ParseProcStat returns the per-CPU lines (cpu0, cpu1, ...; not the
// aggregate "cpu" line) of a /proc/stat, in file order. Lines with fewer
// than the four fields every kernel has (user nice system idle) are an
// error; missing later fields read as 0, as on old kernels.
func ParseProcStat(b []byte) ([]CPUTimes, error) {
	var out []CPUTimes
	seen := make(map[int]bool)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		id, err := strconv.Atoi(f[0][3:])
		if err != nil || id < 0 {
			return nil, fmt.Errorf("proc stat line %d: bad cpu name %q", line, f[0])
		}
		if seen[id] {
			return nil, fmt.Errorf("proc stat line %d: cpu%d listed twice", line, id)
		}
		seen[id] = true
		if len(f) < 5 {
			return nil, fmt.Errorf("proc stat line %d: %d fields, want at least 4 times", line, len(f)-1)
		}
		var v [8]uint64
		for i := 0; i < len(v) && i+1 < len(f); i++ {
			if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
				return nil, fmt.Errorf("proc stat line %d field %d: %w", line, i+1, err)
			}
		}
		out = append(out, CPUTimes{CPU: id, User: v[0], Nice: v[1], System: v[2], Idle: v[3],
			IOWait: v[4], IRQ: v[5], SoftIRQ: v[6], Steal: v[7]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("proc stat: %w", err)
	}
	return out, nil
}

// ReadCPUTimes reads and parses procRoot/stat.
func ReadCPUTimes(procRoot string) ([]CPUTimes, error) {
	p := filepath.Join(procRoot, "stat")
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, absent(SourceCPU, "no "+p)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	t, err := ParseProcStat(b)
	if err != nil {
		return nil, err
	}
	if len(t) == 0 {
		return nil, absent(SourceCPU, "no cpuN lines in "+p)
	}
	return t, nil
}

// CPUUtilization returns the busy fraction ((total-idle-iowait)/total
// ticks) of every CPU present in both samples, in cur's order. A CPU with
// no ticks between the samples (interval shorter than a tick) or whose
// counters went backwards (it went offline and came back) has no figure
// and is left out rather than reported as 0.
func CPUUtilization(prev, cur []CPUTimes) []CoreUtilization {
	byID := make(map[int]CPUTimes, len(prev))
	for _, p := range prev {
		byID[p.CPU] = p
	}
	out := make([]CoreUtilization, 0, len(cur))
	for _, c := range cur {
		p, ok := byID[c.CPU]
		if !ok || c.total() <= p.total() || c.idle() < p.idle() {
			continue
		}
		dt := c.total() - p.total()
		di := c.idle() - p.idle()
		if di > dt {
			di = dt
		}
		out = append(out, CoreUtilization{CPU: c.CPU, Ratio: float64(dt-di) / float64(dt)})
	}
	return out
}
