package bench_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bench"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseIperf3(t *testing.T) {
	udp, err := bench.ParseIperf3(readTestdata(t, "iperf3_udp.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Figures from the captured run (a 1 s run in a lab on this VM).
	if !udp.UDP || udp.Bytes != 80079744 || udp.Packets != 119180 || int(udp.ReceivedBps) != 640312673 || int(udp.SentBps) != 1402927761 ||
		udp.LostPercent < 54.16 || udp.LostPercent > 54.17 || int(udp.PeakBps) != 1402927836 {
		t.Errorf("udp = %+v", udp)
	}
	row := udp.BWRow("iperf3-udp", 1472)
	if row.Iterations != 80079744/1472 || row.Gbps < 0.640 || row.Gbps > 0.641 || row.AvgMBps < 76.33 || row.AvgMBps > 76.34 || !strings.Contains(row.Note, "54.2% lost") {
		t.Errorf("udp row = %+v", row)
	}
	tcp, err := bench.ParseIperf3(readTestdata(t, "iperf3_tcp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if tcp.UDP || tcp.Retransmits != 913 || tcp.Bytes != 1114767360 || int(tcp.ReceivedBps) != 8917273904 {
		t.Errorf("tcp = %+v", tcp)
	}
	if _, err := bench.ParseIperf3(readTestdata(t, "iperf3_refused.json")); err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("refused run: error %v, want iperf3's message", err)
	}
	for _, bad := range []string{"", "{", `{"end":{}}`, `{"end":{"sum_sent":{},"sum_received":{"bits_per_second":1e999}}}`} {
		if _, err := bench.ParseIperf3([]byte(bad)); err == nil {
			t.Errorf("ParseIperf3(%q): no error", bad)
		}
	}
}

func TestParseSockperf(t *testing.T) {
	r, err := bench.ParseSockperf(readTestdata(t, "sockperf_pp.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Observations <= 0 || r.Min <= 0 || r.Min > r.P50 || r.P50 > r.P99 || r.P99 > r.P999 || r.P999 > r.Max || r.Avg <= 0 {
		t.Errorf("sockperf = %+v: want ordered, positive figures", r)
	}
	const sample = "sockperf: \x1b[2;35m====> avg-latency=10.774 (std-dev=60.604)\x1b[0m\n" +
		"sockperf: \x1b[2;35mTotal 25494 observations\x1b[0m; each percentile contains 254.94 observations\n" +
		"sockperf: ---> <MAX> observation = 6772.095\n" +
		"sockperf: ---> percentile 99.900 =  701.421\n" +
		"sockperf: ---> percentile 99.000 =   35.876\n" +
		"sockperf: ---> percentile 50.000 =    7.478\n" +
		"sockperf: ---> <MIN> observation =    7.283\n"
	r, err = bench.ParseSockperf([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	us := func(f float64) time.Duration { return time.Duration(f * 1000) }
	want := bench.SockperfResult{Observations: 25494, Avg: us(10.774), Stdev: us(60.604), Min: us(7.283), Max: us(6772.095), P50: us(7.478), P99: us(35.876), P999: us(701.421)}
	if r != want {
		t.Errorf("ParseSockperf = %+v, want %+v", r, want)
	}
	row := r.LatRow("sockperf-udp", 64)
	if row.Transport != "sockperf-udp" || row.Typical != us(7.478) || row.Iterations != 25494 || row.Size != 64 {
		t.Errorf("row = %+v", row)
	}
	for _, bad := range []string{"", "avg-latency=x", strings.Replace(sample, "percentile 99.000", "percentile 98.000", 1), strings.Replace(sample, "7.478", "99999999999.0", 1)} {
		if _, err := bench.ParseSockperf([]byte(bad)); err == nil {
			t.Errorf("ParseSockperf(%q): no error", bad)
		}
	}
}

func FuzzParseIperf3(f *testing.F) {
	for _, n := range []string{"iperf3_udp.json", "iperf3_tcp.json", "iperf3_refused.json"} {
		f.Add(readTestdata(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := bench.ParseIperf3(b)
		if err != nil {
			return
		}
		row := r.BWRow("x", 1472)
		if row.AvgMBps < 0 && r.ReceivedBps >= 0 {
			t.Fatalf("negative average from %+v", r)
		}
	})
}

func FuzzParseSockperf(f *testing.F) {
	f.Add(readTestdata(f, "sockperf_pp.txt"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := bench.ParseSockperf(b)
		if err != nil {
			return
		}
		if r.Avg < 0 || r.P50 < 0 || r.P99 < 0 || r.P999 < 0 {
			t.Fatalf("negative latency from %q: %+v", b, r)
		}
	})
}

func TestRDMAReportFormat(t *testing.T) {
	bw := []bench.RDMABWResult{{Test: "write_bw", Transport: "af_xdp", Size: 65536, Iterations: 5000, PeakMBps: 1234.5678, AvgMBps: 1100.123, MsgRateMpps: 0.017602, Gbps: 9.228}}
	var b strings.Builder
	bench.WriteRDMABWReport(&b, bw)
	line := "---------------------------------------------------------------------------------------\n"
	want := line +
		" #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]\n" +
		" 65536      5000             1234.57            1100.12\t\t   0.017602\n" + line
	if b.String() != want {
		t.Errorf("WriteRDMABWReport =\n%q\nwant\n%q", b.String(), want)
	}
	lat := []bench.RDMALatResult{{Test: "send_lat", LatResult: bench.LatResult{Transport: "udp", Size: 2, Iterations: 1000,
		Min: 5640, Max: 58200, Typical: 5700, Avg: 5712, Stdev: 20, P99: 5770, P999: 5820}}}
	b.Reset()
	bench.WriteRDMALatReport(&b, lat)
	want = line +
		" #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] \n" +
		" 2       1000          5.64           58.20        5.70     \t       5.71        \t0.02   \t\t5.77    \t\t5.82   \n" + line
	if b.String() != want {
		t.Errorf("WriteRDMALatReport =\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	bench.WriteRDMABanner(&b, bench.RDMAWrite, true, [][2]string{{"Transport", "af_xdp"}})
	if want := line + "                    RDMA_Write BW Test\n Transport       : af_xdp\n" + line; b.String() != want {
		t.Errorf("WriteRDMABanner =\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	bw = append(bw, bench.RDMABWResult{Transport: "iperf3-udp", Size: 1472, Iterations: 10, AvgMBps: 500, PeakMBps: 600, MsgRateMpps: 0.35, Gbps: 4.19, Note: "peer"})
	bench.WriteRDMABWTable(&b, bw)
	want = "transport      #bytes #iterations  BW peak[MB/sec]  BW average[MB/sec]  MsgRate[Mpps]   BW[Gb/sec]\n" +
		"af_xdp          65536        5000          1234.57             1100.12       0.017602        9.228\n" +
		"iperf3-udp       1472          10           600.00              500.00       0.350000        4.190\n" +
		"  iperf3-udp: peer\n"
	if b.String() != want {
		t.Errorf("WriteRDMABWTable =\n%s\nwant\n%s", b.String(), want)
	}
}
