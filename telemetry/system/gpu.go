package system

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// GPUQueryArgs are the nvidia-smi arguments QueryGPUs runs; the CSV
// columns ParseNvidiaSMICSV expects follow this order.
var GPUQueryArgs = []string{
	"--query-gpu=index,name,utilization.gpu,memory.used,memory.total,power.draw",
	"--format=csv,noheader,nounits",
}

// GPU is one row of nvidia-smi. A nil field is one the driver does not
// offer for this GPU ("[N/A]", "[Not Supported]"): absent, not zero.
type GPU struct {
	Index            int      `json:"index"`
	Name             string   `json:"name"`
	UtilizationRatio *float64 `json:"utilization_ratio,omitempty"`
	MemoryUsedBytes  *uint64  `json:"memory_used_bytes,omitempty"`
	MemoryTotalBytes *uint64  `json:"memory_total_bytes,omitempty"`
	PowerWatts       *float64 `json:"power_watts,omitempty"`
}

func smiMissing(s string) bool {
	s = strings.Trim(strings.TrimSpace(s), "[]")
	switch strings.ToLower(s) {
	case "", "n/a", "not supported", "unknown error", "insufficient permissions", "gpu is lost", "requested functionality has been deprecated":
		return true
	}
	return false
}

func smiFloat(s string) (*float64, error) {
	if smiMissing(s) {
		return nil, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || v != v {
		return nil, fmt.Errorf("bad number %q", s)
	}
	return &v, nil
}

// ParseNvidiaSMICSV parses the output of nvidia-smi with GPUQueryArgs:
// "index, name, utilization %, MiB used, MiB total, W" per line.
func ParseNvidiaSMICSV(b []byte) ([]GPU, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.TrimLeadingSpace = true
	r.FieldsPerRecord = 6
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("nvidia-smi csv: %w", err)
	}
	out := make([]GPU, 0, len(recs))
	for i, rec := range recs {
		idx, err := strconv.Atoi(strings.TrimSpace(rec[0]))
		if err != nil || idx < 0 {
			return nil, fmt.Errorf("nvidia-smi csv row %d: bad index %q", i+1, rec[0])
		}
		g := GPU{Index: idx, Name: strings.TrimSpace(rec[1])}
		util, err := smiFloat(rec[2])
		if err != nil {
			return nil, fmt.Errorf("nvidia-smi csv row %d utilization: %w", i+1, err)
		}
		if util != nil {
			r := *util / 100
			g.UtilizationRatio = &r
		}
		for j, dst := range []**uint64{&g.MemoryUsedBytes, &g.MemoryTotalBytes} {
			mib, err := smiFloat(rec[3+j])
			if err != nil {
				return nil, fmt.Errorf("nvidia-smi csv row %d memory: %w", i+1, err)
			}
			if mib != nil {
				if *mib > float64(1<<43) {
					return nil, fmt.Errorf("nvidia-smi csv row %d memory: %q MiB out of range", i+1, rec[3+j])
				}
				v := uint64(*mib * (1 << 20))
				*dst = &v
			}
		}
		if g.PowerWatts, err = smiFloat(rec[5]); err != nil {
			return nil, fmt.Errorf("nvidia-smi csv row %d power: %w", i+1, err)
		}
		out = append(out, g)
	}
	return out, nil
}

// NVLink is the state of one NVLink of one GPU from `nvidia-smi nvlink -s`.
type NVLink struct {
	GPU    int      `json:"gpu"`
	Link   int      `json:"link"`
	Active bool     `json:"active"`
	GBps   *float64 `json:"gb_per_second,omitempty"` // nil when inactive
}

var (
	nvGPURe  = regexp.MustCompile(`^GPU (\d+):`)
	nvLinkRe = regexp.MustCompile(`^Link (\d+):\s*(.*)$`)
)

// ParseNVLinkStatus parses `nvidia-smi nvlink -s`: a "GPU N: name (UUID)"
// line followed by "Link L: 26.562 GB/s" or "Link L: <inactive>" lines.
// Other lines are ignored.
func ParseNVLinkStatus(b []byte) ([]NVLink, error) {
	var out []NVLink
	gpu := -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if m := nvGPURe.FindStringSubmatch(s); m != nil {
			gpu, _ = strconv.Atoi(m[1])
			continue
		}
		m := nvLinkRe.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		if gpu < 0 {
			return nil, fmt.Errorf("nvlink status line %d: link before any GPU line", line)
		}
		l, err := strconv.Atoi(m[1])
		if err != nil {
			return nil, fmt.Errorf("nvlink status line %d: bad link %q", line, m[1])
		}
		nl := NVLink{GPU: gpu, Link: l}
		if f := strings.Fields(m[2]); len(f) == 2 && f[1] == "GB/s" {
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("nvlink status line %d: bad speed %q", line, m[2])
			}
			nl.Active, nl.GBps = true, &v
		}
		out = append(out, nl)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("nvlink status: %w", err)
	}
	return out, nil
}

// runSMI runs nvidia-smi (bin, or "nvidia-smi" looked up on PATH) with
// args under a timeout. Not finding the binary, or the binary failing
// (no driver loaded, no device), is an AbsentError for src.
func runSMI(ctx context.Context, bin string, timeout time.Duration, src Source, args ...string) ([]byte, error) {
	if bin == "" {
		bin = "nvidia-smi"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, absent(src, bin+" not found")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", bin, ctx.Err())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg := firstLine(string(out) + stderr.String())
			return nil, absent(src, fmt.Sprintf("%s exit %d: %s", bin, ee.ExitCode(), msg))
		}
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	return out, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// QueryGPUs runs nvidia-smi with GPUQueryArgs and parses its output. No
// nvidia-smi, a failing one, or one listing no GPU is an AbsentError.
func QueryGPUs(ctx context.Context, bin string, timeout time.Duration) ([]GPU, error) {
	out, err := runSMI(ctx, bin, timeout, SourceGPU, GPUQueryArgs...)
	if err != nil {
		return nil, err
	}
	g, err := ParseNvidiaSMICSV(out)
	if err != nil {
		return nil, err
	}
	if len(g) == 0 {
		return nil, absent(SourceGPU, "nvidia-smi lists no GPU")
	}
	return g, nil
}

// QueryNVLinks runs `nvidia-smi nvlink -s`. No links (PCIe-only GPUs) is
// an AbsentError.
func QueryNVLinks(ctx context.Context, bin string, timeout time.Duration) ([]NVLink, error) {
	out, err := runSMI(ctx, bin, timeout, SourceNVLink, "nvlink", "-s")
	if err != nil {
		return nil, err
	}
	l, err := ParseNVLinkStatus(out)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, absent(SourceNVLink, "nvidia-smi reports no NVLink")
	}
	return l, nil
}
