package flowctl

import "testing"

func TestDCQCNPresets(t *testing.T) {
	for _, name := range DCQCNPresets {
		p, err := DCQCNPreset(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%s preset does not validate: %v", name, err)
		}
	}
	if p, _ := DCQCNPreset("NVIDIA"); p != DefaultDCQCNParams() {
		t.Error("nvidia preset is not DefaultDCQCNParams")
	}
	lab, _ := DCQCNPreset("lab")
	if lab.DCETCPRTT != 1100 || lab.RPGTimeReset != 1100 || lab.MinTimeBetweenCNPs != 250 || lab.RateReduceMonitorPeriod != 250 || lab.ClampTgtRate != 1 || lab.RPGByteReset != 0 {
		t.Errorf("lab preset %+v: want the paper's timers × 20, its decrease path × 5, the target clamped", lab)
	}
	if _, err := DCQCNPreset("fast"); err == nil {
		t.Error("unknown preset accepted")
	}
}
