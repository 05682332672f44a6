package bpf

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFaultInjection(t *testing.T) {
	frame := roceFrame(0x42, 16)
	n := uint64(len(frame))

	t.Run("ppm 1e6 drops all", func(t *testing.T) {
		d := loadTest(t, DispatcherOptions{})
		if err := d.SetFault(ClassRoCEv2, PPMScale); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if act := mustRun(t, d, frame); act != XDPDrop {
				t.Fatalf("run %d: action = %d, want XDP_DROP", i, act)
			}
		}
		assertCounters(t, mustCounters(t, d), one(ClassRoCEv2, ClassCounters{Packets: 20, Bytes: 20 * n, FaultDrop: 20}))
	})

	t.Run("ppm 0 drops none", func(t *testing.T) {
		d := loadTest(t, DispatcherOptions{})
		if err := d.SetFault(ClassRoCEv2, PPMScale); err != nil {
			t.Fatal(err)
		}
		if err := d.SetFault(ClassRoCEv2, 0); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if act := mustRun(t, d, frame); act != XDPPass {
				t.Fatalf("run %d: action = %d, want XDP_PASS", i, act)
			}
		}
		assertCounters(t, mustCounters(t, d), one(ClassRoCEv2, ClassCounters{Packets: 20, Bytes: 20 * n, RedirectFail: 20}))
	})

	t.Run("only the configured class", func(t *testing.T) {
		d := loadTest(t, DispatcherOptions{})
		if err := d.SetFault(ClassOther, PPMScale); err != nil {
			t.Fatal(err)
		}
		if act := mustRun(t, d, frame); act != XDPPass {
			t.Fatalf("rocev2 action = %d, want XDP_PASS", act)
		}
		other := buildFrame(testFrame{src: testSrc4, dst: testDst4, sport: 1, dport: 53})
		if act := mustRun(t, d, other); act != XDPDrop {
			t.Fatalf("other action = %d, want XDP_DROP", act)
		}
		want := [NumClasses]ClassCounters{
			ClassRoCEv2: {Packets: 1, Bytes: n, RedirectFail: 1},
			ClassOther:  {Packets: 1, Bytes: uint64(len(other)), FaultDrop: 1},
		}
		assertCounters(t, mustCounters(t, d), want)
	})

	t.Run("half", func(t *testing.T) {
		d := loadTest(t, DispatcherOptions{})
		if err := d.SetFault(ClassRoCEv2, PPMScale/2); err != nil {
			t.Fatal(err)
		}
		const runs = 2000
		var drops uint64
		for i := 0; i < runs; i++ {
			switch act := mustRun(t, d, frame); act {
			case XDPDrop:
				drops++
			case XDPPass:
			default:
				t.Fatalf("action = %d", act)
			}
		}
		// Binomial(2000, 0.5): sd ~22; 800..1200 is over 8 sd wide.
		if drops < 800 || drops > 1200 {
			t.Errorf("%d of %d dropped at 500000 ppm", drops, runs)
		}
		assertCounters(t, mustCounters(t, d), one(ClassRoCEv2, ClassCounters{Packets: runs, Bytes: runs * n, FaultDrop: drops, RedirectFail: runs - drops}))
	})

	t.Run("invalid", func(t *testing.T) {
		d := loadTest(t, DispatcherOptions{})
		if err := d.SetFault(ClassRoCEv2, PPMScale+1); !errors.Is(err, ErrInvalidFault) {
			t.Errorf("SetFault(1000001) = %v, want ErrInvalidFault", err)
		}
		if err := d.SetFault(Class(NumClasses), 1); !errors.Is(err, ErrInvalidClass) {
			t.Errorf("SetFault(class 3) = %v, want ErrInvalidClass", err)
		}
		if err := d.SetFault(ClassOnet, 1234); err != nil {
			t.Fatal(err)
		}
		if ppm, err := d.Fault(ClassOnet); err != nil || ppm != 1234 {
			t.Errorf("Fault(onet) = %d, %v; want 1234", ppm, err)
		}
	})
}

func TestFlows(t *testing.T) {
	d := loadTest(t, DispatcherOptions{OnetPort: testOnetPort})
	const qp = 0xabcdef
	before := MonotonicNow()
	var roceBytes uint64
	for i := 0; i < 5; i++ {
		f := buildFrame(testFrame{src: testSrc4, dst: testDst4, sport: 0xc123, dport: 4791, ecn: uint8(i % 2 * 3), payload: bth(qp, uint32(i), 100+i)})
		roceBytes += uint64(len(f))
		mustRun(t, d, f)
	}
	onet := buildFrame(testFrame{src: testSrc6, dst: testDst6, sport: 5000, dport: testOnetPort, payload: make([]byte, 64)})
	for i := 0; i < 3; i++ {
		mustRun(t, d, onet)
	}
	short := buildFrame(testFrame{src: testSrc4, dst: testDst4, sport: 0xc124, dport: 4791, payload: make([]byte, 11)})
	mustRun(t, d, short)
	// Not flows: other class and a malformed frame.
	mustRun(t, d, buildFrame(testFrame{src: testSrc4, dst: testDst4, sport: 1, dport: 53}))
	mustRun(t, d, malformedFrames()["udp length 4"])
	after := MonotonicNow()

	type flow struct {
		k FlowKey
		s FlowStats
	}
	got := map[FlowKey]FlowStats{}
	if err := d.Flows(func(k FlowKey, s FlowStats) bool {
		if _, dup := got[k]; dup {
			t.Errorf("flow %+v seen twice", k)
		}
		got[k] = s
		return true
	}); err != nil {
		t.Fatal(err)
	}
	want := []flow{
		{FlowKey{Src: testSrc4, Dst: testDst4, SrcPort: 0xc123, DstPort: 4791, QP: qp, Class: ClassRoCEv2}, FlowStats{Packets: 5, Bytes: roceBytes, CE: 2}},
		{FlowKey{Src: testSrc6, Dst: testDst6, SrcPort: 5000, DstPort: testOnetPort, Class: ClassOnet}, FlowStats{Packets: 3, Bytes: 3 * uint64(len(onet))}},
		{FlowKey{Src: testSrc4, Dst: testDst4, SrcPort: 0xc124, DstPort: 4791, QP: 0, Class: ClassRoCEv2}, FlowStats{Packets: 1, Bytes: uint64(len(short))}},
	}
	if len(got) != len(want) {
		t.Errorf("%d flows, want %d: %+v", len(got), len(want), got)
	}
	for _, w := range want {
		s, ok := got[w.k]
		if !ok {
			t.Errorf("flow %+v missing", w.k)
			continue
		}
		if s.Packets != w.s.Packets || s.Bytes != w.s.Bytes || s.CE != w.s.CE {
			t.Errorf("flow %+v: %d packets %d bytes %d ce, want %d %d %d", w.k, s.Packets, s.Bytes, s.CE, w.s.Packets, w.s.Bytes, w.s.CE)
		}
		if s.FirstSeen < before || s.LastSeen < s.FirstSeen || s.LastSeen > after {
			t.Errorf("flow %+v: first %v last %v outside [%v, %v]", w.k, s.FirstSeen, s.LastSeen, before, after)
		}
	}
	if !want[0].k.Src.Is4() {
		t.Fatal("ipv4 flow address is not unmapped")
	}

	// Stopping early.
	calls := 0
	if err := d.Flows(func(FlowKey, FlowStats) bool { calls++; return false }); err != nil || calls != 1 {
		t.Errorf("Flows with yield=false: %d calls, %v", calls, err)
	}
}

func TestSocketRegistration(t *testing.T) {
	d := loadTest(t, DispatcherOptions{})
	for _, q := range []int{-1, MaxQueues} {
		if err := d.RegisterSocket(q, 3); !errors.Is(err, ErrInvalidQueue) {
			t.Errorf("RegisterSocket(%d) = %v, want ErrInvalidQueue", q, err)
		}
		if err := d.UnregisterSocket(q); !errors.Is(err, ErrInvalidQueue) {
			t.Errorf("UnregisterSocket(%d) = %v, want ErrInvalidQueue", q, err)
		}
	}
	// A UDP socket is not an AF_XDP socket: the kernel refuses it.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := d.RegisterSocket(0, fd); err == nil {
		t.Error("RegisterSocket with a UDP socket succeeded")
	}
	if err := d.UnregisterSocket(5); err != nil {
		t.Errorf("UnregisterSocket of an empty queue: %v", err)
	}
}

func TestClosed(t *testing.T) {
	d := loadTest(t, DispatcherOptions{})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.Counters(); !errors.Is(err, ErrClosed) {
		t.Errorf("Counters after Close = %v, want ErrClosed", err)
	}
	if _, err := d.TestRun(roceFrame(1, 0)); !errors.Is(err, ErrClosed) {
		t.Errorf("TestRun after Close = %v, want ErrClosed", err)
	}
	if err := d.SetOnetPort(1); !errors.Is(err, ErrClosed) {
		t.Errorf("SetOnetPort after Close = %v, want ErrClosed", err)
	}
	if m, r := d.Mode(); m != "" || r != "" {
		t.Errorf("Mode of a loaded-only dispatcher = %q, %q", m, r)
	}
}

func TestResetCounters(t *testing.T) {
	d := loadTest(t, DispatcherOptions{})
	mustRun(t, d, roceFrame(1, 0))
	if err := d.ResetCounters(); err != nil {
		t.Fatal(err)
	}
	assertCounters(t, mustCounters(t, d), [NumClasses]ClassCounters{})
}

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{ClassRoCEv2: "rocev2", ClassOnet: "onet", ClassOther: "other", 7: "class(7)"} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", uint32(c), got, want)
		}
	}
	for m, want := range map[AttachMode]string{AttachAuto: "auto", AttachNative: "native", AttachGeneric: "generic", 9: "mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("AttachMode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}
