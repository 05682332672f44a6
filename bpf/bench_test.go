package bpf

import (
	"testing"
)

// BenchmarkDispatcherTestRun runs the program in the kernel b.N times per
// frame through BPF_PROG_TEST_RUN with Repeat, and reports the kernel's
// time per run as ns/packet (the syscall is paid once per b.N runs).
func BenchmarkDispatcherTestRun(b *testing.B) {
	frames := []struct {
		name  string
		frame []byte
		ppm   uint32
	}{
		{"rocev2", roceFrame(0x123456, 1024), 0},
		{"rocev2-faultdrop", roceFrame(0x123456, 1024), PPMScale},
		{"onet-ipv6", buildFrame(testFrame{src: testSrc6, dst: testDst6, sport: 1, dport: testOnetPort, payload: make([]byte, 1024)}), 0},
		{"other", buildFrame(testFrame{src: testSrc4, dst: testDst4, sport: 1, dport: 53, payload: make([]byte, 64)}), 0},
		{"malformed", malformedFrames()["udp length 4"], 0},
	}
	for _, f := range frames {
		b.Run(f.name, func(b *testing.B) {
			d := loadTest(b, DispatcherOptions{OnetPort: testOnetPort})
			if err := d.SetFault(ClassRoCEv2, f.ppm); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(f.frame)))
			b.ResetTimer()
			_, perRun, err := d.Program().Benchmark(f.frame, b.N, b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(perRun.Nanoseconds()), "ns/packet")
		})
	}
}
