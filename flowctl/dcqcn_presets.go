package flowctl

import (
	"fmt"
	"strings"
)

// DCQCNPresets names the parameter sets DCQCNPreset knows, in order.
var DCQCNPresets = []string{"nvidia", "paper", "lab"}

// DCQCNPreset returns a named parameter set: "nvidia" (ConnectX firmware
// defaults, DefaultDCQCNParams), "paper" (PaperDCQCNParams) or "lab"
// (LabDCQCNParams).
func DCQCNPreset(name string) (DCQCNParams, error) {
	switch strings.ToLower(name) {
	case "nvidia", "":
		return DefaultDCQCNParams(), nil
	case "paper":
		return PaperDCQCNParams(), nil
	case "lab":
		return LabDCQCNParams(), nil
	}
	return DCQCNParams{}, fmt.Errorf("dcqcn preset %q (want %s)", name, strings.Join(DCQCNPresets, ", "))
}

// PaperDCQCNParams returns the DCQCN paper's settings (Zhu et al., SIGCOMM
// 2015, §5: timer 55µs, byte counter off in effect (the paper's 10 MB is
// beyond rpg_byte_reset's range), R_AI 40 Mb/s, R_HAI 200 Mb/s, g = 1/256,
// alpha and rate-decrease periods and the CNP interval 50-55µs, target clamped
// on every decrease) written in NVIDIA's names over DefaultDCQCNParams.
//
// In the flowctl/sim model NVIDIA's firmware defaults do not converge on a
// 100 Gbit/s bottleneck: with rpg_byte_reset 32767 B a flow above ~65
// Gbit/s completes a byte stage (fast recovery halfway back to a target
// that clamp_tgt_rate_after_time_inc keeps at the line rate) between two
// CNPs 4µs apart, so every flow settles near 80 Gbit/s and the buffer
// stays full. The paper's settings converge (see the sim's tests).
func PaperDCQCNParams() DCQCNParams {
	p := DefaultDCQCNParams()
	p.RPGTimeReset = 55
	p.RPGByteReset = 0
	p.RPGAIRate = 40
	p.RPGHAIRate = 200
	p.DCETCPG = 1020
	p.DCETCPRTT = 55
	p.RateReduceMonitorPeriod = 50
	p.MinTimeBetweenCNPs = 50
	p.ClampTgtRate = 1
	return p
}

// LabDCQCNParams returns the paper's algorithm scaled to the software
// path of a namespace lab: a bottleneck near 500 Mbit/s instead of 40-100
// Gbit/s, and round trips of 100 µs to a few ms instead of a few µs. The
// timer and alpha period grow 20-fold (55µs to 1.1 ms); the decrease path
// (CNP interval and rate_reduce_monitor_period) only 5-fold, to 250µs: at
// 20-fold the first round trip at the line rate overflowed a 512 KiB lab
// bottleneck before the third decrease. The increase steps shrink with the
// link (R_AI 5 Mb/s, R_HAI 20 Mb/s: 1 % and 4 % of 500 Mbit/s per step).
//
// NVIDIA's defaults, built for µs round trips, let alpha decay to nothing
// between the ~1 ms-apart CNPs a software receiver sends (dce_tcp_rtt
// 1µs), so their decreases shrink to nothing and the rate stays at the
// line rate.
func LabDCQCNParams() DCQCNParams {
	p := PaperDCQCNParams()
	p.RPGTimeReset = 1100
	p.DCETCPRTT = 1100
	p.RateReduceMonitorPeriod = 250
	p.MinTimeBetweenCNPs = 250
	p.RPGAIRate = 5
	p.RPGHAIRate = 20
	return p
}
