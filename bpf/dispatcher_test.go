package bpf

import (
	"encoding/binary"
	"testing"

	"github.com/opennetworks/onetdp/internal/testutil"
)

const testOnetPort = 9999

// loadTest loads a fresh dispatcher (fresh maps) closed at the end of the test.
func loadTest(tb testing.TB, opts DispatcherOptions) *Dispatcher {
	tb.Helper()
	testutil.RequireRoot(tb)
	d, err := Load(opts)
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return d
}

func mustCounters(tb testing.TB, d *Dispatcher) [NumClasses]ClassCounters {
	tb.Helper()
	c, err := d.Counters()
	if err != nil {
		tb.Fatalf("counters: %v", err)
	}
	return c
}

func mustRun(tb testing.TB, d *Dispatcher, frame []byte) uint32 {
	tb.Helper()
	act, err := d.TestRun(frame)
	if err != nil {
		tb.Fatalf("test run: %v", err)
	}
	return act
}

func assertCounters(tb testing.TB, got, want [NumClasses]ClassCounters) {
	tb.Helper()
	for c := Class(0); c < NumClasses; c++ {
		if got[c] != want[c] {
			tb.Errorf("%s counters = %+v, want %+v", c, got[c], want[c])
		}
	}
}

// one returns counters with a single frame in class c.
func one(c Class, cc ClassCounters) [NumClasses]ClassCounters {
	var w [NumClasses]ClassCounters
	w[c] = cc
	return w
}

func TestClassify(t *testing.T) {
	udp := func(f testFrame) []byte {
		if !f.src.IsValid() {
			f.src, f.dst = testSrc4, testDst4
		}
		if f.sport == 0 {
			f.sport = 40000
		}
		return buildFrame(f)
	}
	arp := append(make([]byte, 12), 0x08, 0x06)
	arp = append(arp, make([]byte, 28)...)
	doubleTag := udp(testFrame{vlanTPID: 0x88a8, dport: 4791, payload: bth(1, 1, 8)})
	doubleTag = append(doubleTag[:16:16], append([]byte{0x81, 0x00, 0x00, 0x05}, doubleTag[16:]...)...)
	padded := udp(testFrame{dport: testOnetPort, payload: []byte{1, 2}})
	padded = append(padded, make([]byte, 60-len(padded))...)

	type tc struct {
		name     string
		frame    []byte
		class    Class
		ce       bool
		redirect bool // class redirects (RoCEv2/onet): fails without a socket
	}
	cases := []tc{
		{"rocev2 ipv4", roceFrame(0x123456, 32), ClassRoCEv2, false, true},
		{"rocev2 short payload", udp(testFrame{dport: 4791, payload: []byte{1, 2, 3}}), ClassRoCEv2, false, true},
		{"onet ipv4", udp(testFrame{dport: testOnetPort, payload: make([]byte, 100)}), ClassOnet, false, true},
		{"onet ipv4 padded to 60 bytes", padded, ClassOnet, false, true},
		{"other udp", udp(testFrame{dport: 53, payload: make([]byte, 20)}), ClassOther, false, false},
		{"arp", arp, ClassOther, false, false},
		{"ipv4 tcp", udp(testFrame{proto: 6, payload: make([]byte, 20)}), ClassOther, false, false},
		{"ipv4 options 40 rocev2", udp(testFrame{ipOptions: 40, dport: 4791, payload: bth(7, 1, 16)}), ClassRoCEv2, false, true},
		{"ipv4 options 8 onet", udp(testFrame{ipOptions: 8, dport: testOnetPort, payload: make([]byte, 8)}), ClassOnet, false, true},
		{"vlan 802.1q rocev2", udp(testFrame{vlanTPID: 0x8100, dport: 4791, payload: bth(9, 1, 16)}), ClassRoCEv2, false, true},
		{"vlan 802.1ad onet ipv6", udp(testFrame{vlanTPID: 0x88a8, src: testSrc6, dst: testDst6, dport: testOnetPort, payload: make([]byte, 30)}), ClassOnet, false, true},
		{"double vlan tag", doubleTag, ClassOther, false, false},
		{"ipv6 rocev2", udp(testFrame{src: testSrc6, dst: testDst6, dport: 4791, payload: bth(3, 1, 64)}), ClassRoCEv2, false, true},
		{"ipv6 two ext headers rocev2", udp(testFrame{src: testSrc6, dst: testDst6, extHdrs: 2, dport: 4791, payload: bth(3, 1, 64)}), ClassRoCEv2, false, true},
		{"ipv6 five ext headers", udp(testFrame{src: testSrc6, dst: testDst6, extHdrs: 5, dport: 4791, payload: bth(3, 1, 64)}), ClassOther, false, false},
		{"ipv6 other udp", udp(testFrame{src: testSrc6, dst: testDst6, dport: 5353}), ClassOther, false, false},
		{"ipv4 ce rocev2", udp(testFrame{ecn: 3, dport: 4791, payload: bth(5, 1, 8)}), ClassRoCEv2, true, true},
		{"ipv4 ect0 rocev2", udp(testFrame{ecn: 2, dport: 4791, payload: bth(5, 1, 8)}), ClassRoCEv2, false, true},
		{"ipv6 ce other", udp(testFrame{src: testSrc6, dst: testDst6, ecn: 3, dport: 80}), ClassOther, true, false},
		{"ipv6 ce onet", udp(testFrame{src: testSrc6, dst: testDst6, ecn: 3, dport: testOnetPort}), ClassOnet, true, true},
		{"ipv4 ce tcp", udp(testFrame{ecn: 3, proto: 6, payload: make([]byte, 20)}), ClassOther, true, false},
		{"ipv4 first fragment", udp(testFrame{fragOff: 0x2000, dport: 4791, payload: bth(1, 1, 8)}), ClassOther, false, false},
		{"ipv4 non-first fragment", udp(testFrame{fragOff: 0x0010, dport: 4791, payload: bth(1, 1, 8)}), ClassOther, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := loadTest(t, DispatcherOptions{OnetPort: testOnetPort})
			if act := mustRun(t, d, c.frame); act != XDPPass {
				t.Fatalf("action = %d, want XDP_PASS (%d)", act, XDPPass)
			}
			want := ClassCounters{Packets: 1, Bytes: uint64(len(c.frame))}
			if c.ce {
				want.CE = 1
			}
			if c.redirect {
				want.RedirectFail = 1
			}
			assertCounters(t, mustCounters(t, d), one(c.class, want))
		})
	}
}

func TestOnetPort(t *testing.T) {
	d := loadTest(t, DispatcherOptions{})
	frame := buildFrame(testFrame{src: testSrc4, dst: testDst4, sport: 1, dport: 7000, payload: make([]byte, 10)})
	mustRun(t, d, frame)
	if err := d.SetOnetPort(7000); err != nil {
		t.Fatal(err)
	}
	mustRun(t, d, frame)
	mustRun(t, d, frame)
	if err := d.SetOnetPort(0); err != nil {
		t.Fatal(err)
	}
	mustRun(t, d, frame)
	n := uint64(len(frame))
	want := [NumClasses]ClassCounters{
		ClassOnet:  {Packets: 2, Bytes: 2 * n, RedirectFail: 2},
		ClassOther: {Packets: 2, Bytes: 2 * n},
	}
	assertCounters(t, mustCounters(t, d), want)

	// The RoCEv2 port stays RoCEv2 even when configured as the onet port.
	if err := d.SetOnetPort(4791); err != nil {
		t.Fatal(err)
	}
	roce := roceFrame(1, 0)
	mustRun(t, d, roce)
	want[ClassRoCEv2] = ClassCounters{Packets: 1, Bytes: uint64(len(roce)), RedirectFail: 1}
	assertCounters(t, mustCounters(t, d), want)
}

// malformedFrames returns frames that fail a parse check, by name.
func malformedFrames() map[string][]byte {
	base := testFrame{src: testSrc4, dst: testDst4, sport: 1, dport: 4791, payload: bth(1, 1, 8)}
	v4 := func(mut func(b []byte) []byte) []byte { return mut(buildFrame(base)) }
	base6 := base
	base6.src, base6.dst = testSrc6, testDst6
	v6 := func(mut func(b []byte) []byte) []byte { return mut(buildFrame(base6)) }
	ext6 := base6
	ext6.extHdrs = 1

	return map[string][]byte{
		"ethernet only, ipv4 type": v4(func(b []byte) []byte { return b[:14] }),
		"truncated ipv4 header":    v4(func(b []byte) []byte { return b[:14+12] }),
		"ipv4 ihl 3":               v4(func(b []byte) []byte { b[14] = 0x43; return b }),
		"ipv4 ihl 0":               v4(func(b []byte) []byte { b[14] = 0x40; return b }),
		"ipv4 version 5":           v4(func(b []byte) []byte { b[14] = 0x55; return b }),
		"ipv4 ihl 15 beyond frame": v4(func(b []byte) []byte { b[14] = 0x4f; return b[:14+40] }),
		"ipv4 total length beyond frame": v4(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[16:], uint16(len(b)-14+1))
			return b
		}),
		"ipv4 total length below header": v4(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[16:], 19)
			return b
		}),
		"truncated udp header": v4(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[16:], 24)
			return b[:14+24]
		}),
		"ip payload shorter than udp header": v4(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[16:], 24) // frame keeps its bytes
			return b
		}),
		"udp length 4": v4(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[14+20+4:], 4)
			return b
		}),
		"udp length beyond ip payload": v4(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[14+20+4:], uint16(len(b)-14-20+1))
			return b
		}),
		"vlan tag truncated":    buildFrame(testFrame{vlanTPID: 0x8100, src: testSrc4, dst: testDst4, dport: 4791})[:16],
		"truncated ipv6 header": v6(func(b []byte) []byte { return b[:14+30] }),
		"ipv6 version 4":        v6(func(b []byte) []byte { b[14] = 0x40 | b[14]&0x0f; return b }),
		"ipv6 payload beyond frame": v6(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[18:], uint16(len(b)-54+1))
			return b
		}),
		"ipv6 udp payload length 0": v6(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[18:], 0)
			return b
		}),
		"ipv6 ext header beyond payload": func() []byte {
			b := buildFrame(ext6)
			b[54+1] = 200 // hdrlen: (200+1)*8 bytes
			return b
		}(),
	}
}

func TestMalformed(t *testing.T) {
	for name, frame := range malformedFrames() {
		t.Run(name, func(t *testing.T) {
			d := loadTest(t, DispatcherOptions{OnetPort: testOnetPort})
			// Fault injection must not touch malformed frames.
			if err := d.SetFault(ClassOther, PPMScale); err != nil {
				t.Fatal(err)
			}
			if act := mustRun(t, d, frame); act != XDPPass {
				t.Fatalf("action = %d, want XDP_PASS", act)
			}
			assertCounters(t, mustCounters(t, d), one(ClassOther, ClassCounters{Packets: 1, Bytes: uint64(len(frame)), ParseErr: 1}))
		})
	}
}

func TestShortFrameRejectedByKernel(t *testing.T) {
	// BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header, so a
	// 10-byte frame cannot reach the program that way; a real NIC does not
	// deliver one either. The program's first check covers it anyway.
	d := loadTest(t, DispatcherOptions{})
	if _, err := d.TestRun(make([]byte, 10)); err == nil {
		t.Fatal("test run of a 10-byte frame succeeded, want an error from the kernel")
	}
	assertCounters(t, mustCounters(t, d), [NumClasses]ClassCounters{})
}
