package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/lab"
)

// Peer ports inside the lab's namespaces (nothing else listens there).
const (
	iperf3Port   = 5301
	sockperfPort = 11111
)

// startPeerServer starts a peer's server in host h; stop kills it and
// waits. A missing binary is reported as such.
func startPeerServer(ctx context.Context, h *lab.Host, name string, args ...string) (stop func(), err error) {
	if _, err := exec.LookPath(name); err != nil {
		return nil, fmt.Errorf("%s is not installed (apt-get install %s): %w", name, name, err)
	}
	cmd := h.Command(ctx, name, args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s server in %s: %w", name, h.Name, err)
	}
	return func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}, nil
}

// runIperf3Peers measures iperf3 UDP (1472 B datagrams, unlimited rate) and
// TCP from h0 to h1 for d each. A peer that cannot run becomes a note on
// progress, not an error.
func runIperf3Peers(ctx context.Context, progress io.Writer, l *lab.Lab, d time.Duration) []bench.RDMABWResult {
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	stop, err := startPeerServer(ctx, h1, "iperf3", "-s", "-B", h1.Addr.Addr().String(), "-p", strconv.Itoa(iperf3Port))
	if err != nil {
		fmt.Fprintf(progress, "peers: iperf3 rows skipped: %v\n", err)
		return nil
	}
	defer stop()
	secs := strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
	var rows []bench.RDMABWResult
	for _, p := range []struct {
		name string
		size int
		args []string
	}{
		{"iperf3-udp", 1472, []string{"-u", "-l", "1472", "-b", "0"}},
		{"iperf3-tcp", 128 << 10, nil}, // iperf3's default TCP write size
	} {
		fmt.Fprintf(progress, "peers: %s for %ss...\n", p.name, secs)
		args := append([]string{"-c", h1.Addr.Addr().String(), "-p", strconv.Itoa(iperf3Port), "-t", secs, "--json"}, p.args...)
		r, err := runIperf3Client(ctx, h0, args)
		if err != nil {
			fmt.Fprintf(progress, "peers: %s row skipped: %v\n", p.name, err)
			continue
		}
		rows = append(rows, r.BWRow(p.name, p.size))
	}
	return rows
}

// runIperf3Client runs the client, retrying while the server is not yet
// listening (for at most 2 s).
func runIperf3Client(ctx context.Context, h *lab.Host, args []string) (bench.Iperf3Result, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		out, runErr := h.Command(ctx, "iperf3", args...).Output()
		r, err := bench.ParseIperf3(out)
		if err == nil {
			return r, nil
		}
		if strings.Contains(err.Error(), "refused") && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if runErr != nil {
			return r, fmt.Errorf("iperf3 %s: %w (%v)", strings.Join(args, " "), err, runErr)
		}
		return r, err
	}
}

// runSockperfPeer measures sockperf's UDP ping-pong of 64 B from h0 to h1
// for d.
func runSockperfPeer(ctx context.Context, progress io.Writer, l *lab.Lab, d time.Duration) []bench.RDMALatResult {
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	addr, port := h1.Addr.Addr().String(), strconv.Itoa(sockperfPort)
	stop, err := startPeerServer(ctx, h1, "sockperf", "sr", "-i", addr, "-p", port)
	if err != nil {
		fmt.Fprintf(progress, "peers: sockperf row skipped: %v\n", err)
		return nil
	}
	defer stop()
	secs := strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
	fmt.Fprintf(progress, "peers: sockperf-udp ping-pong, 64 B, for %ss...\n", secs)
	deadline := time.Now().Add(2 * time.Second)
	for {
		out, runErr := h0.Command(ctx, "sockperf", "pp", "-i", addr, "-p", port, "--mps=max", "-m", "64", "-t", secs).CombinedOutput()
		r, err := bench.ParseSockperf(out)
		if err == nil {
			return []bench.RDMALatResult{r.LatRow("sockperf-udp", 64)}
		}
		// The server may not be up yet: sockperf then sees no replies.
		if time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		fmt.Fprintf(progress, "peers: sockperf row skipped: %v (%v)\n", err, runErr)
		return nil
	}
}
