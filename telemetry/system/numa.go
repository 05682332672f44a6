package system

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// NodeMemory is the memory of one NUMA node, from its sysfs meminfo.
type NodeMemory struct {
	Node       int    `json:"node"`
	TotalBytes uint64 `json:"total_bytes"`
	FreeBytes  uint64 `json:"free_bytes"`
	UsedBytes  uint64 `json:"used_bytes"`
}

// ParseNodeMeminfo parses /sys/devices/system/node/nodeN/meminfo
// ("Node 0 MemTotal:  10447060 kB" lines). MemTotal and MemFree are
// required; MemUsed is total minus free when the line is missing.
func ParseNodeMeminfo(b []byte) (NodeMemory, error) {
	var m NodeMemory
	var haveTotal, haveFree, haveUsed bool
	node := -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 4 || f[0] != "Node" {
			return NodeMemory{}, fmt.Errorf("node meminfo line %d: want \"Node N Key: value [kB]\", got %q", line, sc.Text())
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 {
			return NodeMemory{}, fmt.Errorf("node meminfo line %d: bad node %q", line, f[1])
		}
		if node >= 0 && n != node {
			return NodeMemory{}, fmt.Errorf("node meminfo line %d: node %d in the file of node %d", line, n, node)
		}
		node = n
		key := strings.TrimSuffix(f[2], ":")
		if key != "MemTotal" && key != "MemFree" && key != "MemUsed" {
			continue
		}
		v, err := strconv.ParseUint(f[3], 10, 64)
		if err != nil {
			return NodeMemory{}, fmt.Errorf("node meminfo line %d %s: %w", line, key, err)
		}
		mult := uint64(1)
		if len(f) >= 5 {
			if f[4] != "kB" {
				return NodeMemory{}, fmt.Errorf("node meminfo line %d %s: unit %q, want kB", line, key, f[4])
			}
			mult = 1024
		}
		if v > ^uint64(0)/mult {
			return NodeMemory{}, fmt.Errorf("node meminfo line %d %s: %d kB overflows", line, key, v)
		}
		switch key {
		case "MemTotal":
			m.TotalBytes, haveTotal = v*mult, true
		case "MemFree":
			m.FreeBytes, haveFree = v*mult, true
		case "MemUsed":
			m.UsedBytes, haveUsed = v*mult, true
		}
	}
	if !haveTotal || !haveFree {
		return NodeMemory{}, errors.New("node meminfo: no MemTotal or MemFree line")
	}
	if !haveUsed && m.TotalBytes >= m.FreeBytes {
		m.UsedBytes = m.TotalBytes - m.FreeBytes
	}
	m.Node = node
	return m, nil
}

// ReadNUMAMemory reads every sysRoot/devices/system/node/nodeN/meminfo,
// sorted by node. A kernel without NUMA support has no such directory:
// the result is then an AbsentError.
func ReadNUMAMemory(sysRoot string) ([]NodeMemory, error) {
	dir := filepath.Join(sysRoot, "devices", "system", "node")
	paths, _ := filepath.Glob(filepath.Join(dir, "node[0-9]*", "meminfo")) // only ErrBadPattern, impossible here
	if len(paths) == 0 {
		return nil, absent(SourceNUMA, "no "+dir+"/node*/meminfo (kernel without NUMA)")
	}
	out := make([]NodeMemory, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		m, err := ParseNodeMeminfo(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// NICNode is the NUMA node of one network interface; Absent says why it
// has none (a virtual device, or firmware that reports -1).
type NICNode struct {
	Iface  string `json:"iface"`
	Node   int    `json:"node"`
	Absent string `json:"absent,omitempty"`
}

// ReadNICNUMA returns the NUMA node of iface from
// sysRoot/class/net/<iface>/device/numa_node. Virtual devices (veth,
// bridge, lo) have no device link, virtio and single-node machines report
// -1: both are an AbsentError. A missing interface is an error.
func ReadNICNUMA(sysRoot, iface string) (int, error) {
	if iface == "" || strings.ContainsAny(iface, "/\x00") || iface == "." || iface == ".." {
		return 0, fmt.Errorf("nic numa: bad interface name %q", iface)
	}
	dir := filepath.Join(sysRoot, "class", "net", iface)
	if _, err := os.Stat(dir); err != nil {
		return 0, fmt.Errorf("nic numa %s: %w", iface, err)
	}
	p := filepath.Join(dir, "device", "numa_node")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(filepath.Join(dir, "device")); derr != nil {
			return 0, absent(SourceNIC, "virtual device (no bus device)")
		}
		return 0, absent(SourceNIC, "bus device has no numa_node")
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", p, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", p, err)
	}
	if n < 0 {
		return 0, absent(SourceNIC, "device reports no NUMA affinity (numa_node -1)")
	}
	return n, nil
}

// ReadNICs returns the NUMA node of each interface in ifaces, or of every
// interface under sysRoot/class/net when ifaces is empty, sorted by name
// in the latter case.
func ReadNICs(sysRoot string, ifaces []string) ([]NICNode, error) {
	if len(ifaces) == 0 {
		ents, err := os.ReadDir(filepath.Join(sysRoot, "class", "net"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, absent(SourceNIC, "no "+filepath.Join(sysRoot, "class", "net"))
		}
		if err != nil {
			return nil, fmt.Errorf("list interfaces: %w", err)
		}
		for _, e := range ents {
			ifaces = append(ifaces, e.Name())
		}
	}
	out := make([]NICNode, 0, len(ifaces))
	for _, name := range ifaces {
		n, err := ReadNICNUMA(sysRoot, name)
		switch {
		case errors.Is(err, ErrAbsent):
			out = append(out, NICNode{Iface: name, Node: -1, Absent: absentReason(err)})
		case err != nil:
			return nil, err
		default:
			out = append(out, NICNode{Iface: name, Node: n})
		}
	}
	return out, nil
}
