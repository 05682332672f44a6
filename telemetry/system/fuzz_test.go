package system

import (
	"testing"
)

// The parsers must never panic and must keep their invariants on any
// input; seeds live in testdata/fuzz.

func FuzzParseProcStat(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := ParseProcStat(b)
		if err != nil {
			return
		}
		for _, u := range CPUUtilization(ts, ts) {
			t.Fatalf("utilization between a sample and itself: %+v", u)
		}
	})
}

func FuzzParseNodeMeminfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseNodeMeminfo(b)
		if err == nil && m.Node < 0 {
			t.Fatalf("node %d", m.Node)
		}
	})
}

func FuzzParseNvidiaSMICSV(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		gs, err := ParseNvidiaSMICSV(b)
		if err != nil {
			return
		}
		for _, g := range gs {
			if g.UtilizationRatio != nil && *g.UtilizationRatio < 0 || g.PowerWatts != nil && *g.PowerWatts < 0 {
				t.Fatalf("negative figure in %+v", g)
			}
		}
	})
}

func FuzzParseNVLinkStatus(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := ParseNVLinkStatus(b)
		if err != nil {
			return
		}
		for _, l := range ls {
			if l.Active != (l.GBps != nil) {
				t.Fatalf("active %v with speed %v", l.Active, l.GBps)
			}
		}
	})
}
