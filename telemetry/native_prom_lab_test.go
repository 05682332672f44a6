package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/lab"
	"github.com/opennetworks/onetdp/lab/labtest"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// TestLabPrometheusNativeLatency: Debian's Prometheus, with native
// histograms enabled, scrapes a RoCEv2 collector in a lab host and
// ingests onet_rocev2_operation_latency_seconds as a native histogram:
// histogram_count is exact and histogram_quantile within a bucket.
func TestLabPrometheusNativeLatency(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus server binary not installed (apt-get install prometheus): %v", err)
	}
	l := labtest.New(t, lab.Options{Hosts: 2})
	h := &l.Hosts[0]

	net0 := porttest.NewNetwork(porttest.NetworkOptions{MTU: 4200, QueueLen: 64})
	port, err := net0.NewPort(netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), rocev2.UDPPort))
	if err != nil {
		t.Fatal(err)
	}
	d, err := rocev2.Open(rocev2.Options{Port: port, Name: "native0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for i := 1; i <= 100; i++ {
		d.Stats().OpLatency[rocev2.OpClassWrite].Observe(time.Duration(i) * time.Microsecond)
	}
	reg, err := NewRegistry(NewRoCEv2Collector(d, RoCEv2CollectorOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(reg), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	conf := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: onetdp\n    static_configs:\n      - targets: ['%s']\n", ln.Addr())
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	const promAddr = "127.0.0.1:9090" // the lab host's namespace is the test's own
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn", "--enable-feature=native-histograms")
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs)
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := h.Do(func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}}}
	query := func(q string) (float64, bool) {
		resp, err := hc.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || r.Status != "success" || len(r.Data.Result) != 1 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	sel := `onet_rocev2_operation_latency_seconds{op="write",device="native0"}`
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, ok := query("histogram_count(" + sel + ")"); ok && n == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no native histogram with 100 observations after 30 s")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if s, ok := query("histogram_sum(" + sel + ")"); !ok || s < 0.00504 || s > 0.00506 {
		t.Errorf("histogram_sum %v (%v), want 0.00505", s, ok)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 50e-6}, {0.95, 95e-6}, {0.99, 99e-6}} {
		v, ok := query(fmt.Sprintf("histogram_quantile(%g, %s)", c.q, sel))
		if !ok || v < c.want/1.19 || v > c.want*1.19 {
			t.Errorf("native P%g = %v (%v), want %g within a 19 %% bucket", 100*c.q, v, ok, c.want)
		}
	}
}
