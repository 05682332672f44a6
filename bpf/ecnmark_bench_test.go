package bpf

import "testing"

// BenchmarkECNMarkerTestRun runs the marker in the kernel b.N times per
// frame through BPF_PROG_TEST_RUN with Repeat and reports the kernel's time
// per run as ns/packet. The same skb is reused, so an ECT frame is marked
// once and then seen as CE: "marking" keeps the queue above Kmax with a
// Not-ECT frame to time the marking decision on every run.
func BenchmarkECNMarkerTestRun(b *testing.B) {
	cases := []struct {
		name  string
		frame []byte
		opts  ECNMarkerOptions
	}{
		{"below-kmin-ipv4", ecnFrame(false, 0, 2, 1000), ECNMarkerOptions{RateBps: MaxECNRateBps, KminBytes: 1 << 20, KmaxBytes: 1 << 21, PmaxPPM: PPMScale}},
		{"red-ipv6", ecnFrame(true, 0, 0, 1000), ECNMarkerOptions{RateBps: MaxECNRateBps, KminBytes: 0, KmaxBytes: 1 << 20, PmaxPPM: 100_000}},
		{"marking-vlan-ipv4", ecnFrame(false, 0x8100, 0, 1000), alwaysMark},
		{"not-ip", append(append(make([]byte, 12), 0x08, 0x06), make([]byte, 28)...), alwaysMark},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m := loadMarker(b, c.opts)
			b.SetBytes(int64(len(c.frame)))
			b.ResetTimer()
			_, perRun, err := m.Program().Benchmark(c.frame, b.N, b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(perRun.Nanoseconds()), "ns/packet")
		})
	}
}
