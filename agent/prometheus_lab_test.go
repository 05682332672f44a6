package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/lab"
)

// agentProc is an agent running as a child process in a lab host.
type agentProc struct {
	cmd  *lab.Cmd
	out  *bufio.Scanner
	errs *strings.Builder
}

// startAgentProc runs the test binary as an agent (see TestMain) in h and
// waits until it is ready.
func startAgentProc(t *testing.T, h *lab.Host, o Options) *agentProc {
	t.Helper()
	spec, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	p := &agentProc{cmd: cmd, errs: &strings.Builder{}}
	cmd.Stderr = p.errs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start agent in %s: %v", h.Name, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	p.out = bufio.NewScanner(stdout)
	ready := make(chan string, 1)
	go func() {
		if p.out.Scan() {
			ready <- p.out.Text()
		}
		close(ready)
	}()
	select {
	case line, ok := <-ready:
		if !ok || !strings.HasPrefix(line, "ready ") {
			cmd.Wait()
			t.Fatalf("agent child did not start: %q; stderr: %s", line, p.errs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("agent child not ready after 20 s; stderr: %s", p.errs)
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *agentProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM agent: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent exit after SIGTERM: %v; stderr: %s", err, p.errs)
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("agent still running 20 s after SIGTERM")
	}
}

// promServer is a Prometheus server running in a lab host.
type promServer struct {
	addr string
	hc   *http.Client
}

// startPrometheus runs Debian's prometheus in h, scraping target every
// second, and waits until it is ready.
func startPrometheus(t *testing.T, h *lab.Host, target string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus server binary not installed (apt-get install prometheus): %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	conf := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: onetdp-agent\n    static_configs:\n      - targets: ['%s']\n", target)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:9090" // the host's namespace is the test's own
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs)
		}
	})
	p := &promServer{addr: addr, hc: httpClientIn(h)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := p.hc.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30 s: %v\n%s", err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// query runs an instant PromQL query and returns the value of each series
// by the value of label.
func (p *promServer) query(t *testing.T, q, label string) map[string]float64 {
	t.Helper()
	resp, err := p.hc.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s %s", q, err, r.Status, r.Error)
	}
	out := map[string]float64{}
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("query %s: value %v: %v", q, s.Value, err)
		}
		out[s.Metric[label]] = v
	}
	return out
}

// waitQuery polls q until the series named in want have exactly those
// values (at most 30 s: a few scrape intervals) and returns the last result.
func (p *promServer) waitQuery(t *testing.T, q, label string, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := p.query(t, q, label)
		ok := true
		for k, v := range want {
			if g, present := got[k]; !present || g != v {
				ok = false
			}
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 30 s, want %v", q, got, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestAgentPrometheusExactCounts: a real Prometheus server scrapes an agent
// process in a lab host; after a bounded sender sends known numbers of
// RoCEv2 and onet datagrams, PromQL returns exactly those per class. The
// agent then gets SIGTERM (no XDP program left attached), restarts on its
// pinned maps, and Prometheus sees the counters continue.
func TestAgentPrometheusExactCounts(t *testing.T) {
	l := newLab(t)
	h0, h1 := &l.Hosts[0], &l.Hosts[1]
	o := testOptions(t, h0)
	o.Netns = "" // the child starts inside h0
	o.MetricsAddr = "127.0.0.1:9469"
	o.UnpinOnExit = false

	ag := startAgentProc(t, h0, o)
	prom := startPrometheus(t, h0, o.MetricsAddr)
	const q = `sum by (class) (onet_xdp_rx_packets_total{job="onetdp-agent",interface="eth0"})`
	// The series exist (ARP and other traffic may count in "other").
	prom.waitQuery(t, q, "class", map[string]float64{"rocev2": 0, "onet": 0})

	const nRoCE, nOnet = 37, 23
	dst := h0.Addr.Addr()
	sendUDP(t, h1, dst, 4791, nRoCE)
	sendUDP(t, h1, dst, testOnetPort, nOnet)
	got := prom.waitQuery(t, q, "class", map[string]float64{"rocev2": nRoCE, "onet": nOnet})
	t.Logf("after %d RoCEv2 and %d onet datagrams Prometheus reports %v", nRoCE, nOnet, got)
	bytesQ := `sum by (class) (onet_xdp_rx_bytes_total{interface="eth0"})`
	// Each datagram: 14 Ethernet + 20 IPv4 + 8 UDP + 32 payload = 74 bytes.
	prom.waitQuery(t, bytesQ, "class", map[string]float64{"rocev2": nRoCE * 74, "onet": nOnet * 74})

	ag.stop(t)
	if xdpAttached(t, h0) {
		t.Fatal("XDP program still attached after SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(o.PinDir, h0.Ifname, "onet_counters")); err != nil {
		t.Fatalf("counters not pinned after SIGTERM: %v", err)
	}

	ag = startAgentProc(t, h0, o)
	const more = 11
	sendUDP(t, h1, dst, testOnetPort, more)
	prom.waitQuery(t, q, "class", map[string]float64{"rocev2": nRoCE, "onet": nOnet + more})
	// A counter that never went backwards: no reset seen by Prometheus.
	resets := prom.query(t, `resets(onet_xdp_rx_packets_total{class="onet"}[5m])`, "class")
	if resets["onet"] != 0 {
		t.Fatalf("Prometheus saw %v counter resets across the restart", resets["onet"])
	}
	ag.stop(t)
	if xdpAttached(t, h0) {
		t.Fatal("XDP program still attached after the second SIGTERM")
	}
}
