package sim

import "github.com/opennetworks/onetdp/flowctl"

// PaperDCQCNParams returns the DCQCN paper's settings (Zhu et al., SIGCOMM
// 2015, §5: timer 55µs, byte counter off in effect (the paper's 10 MB is
// beyond rpg_byte_reset's range), R_AI 40 Mb/s, R_HAI 200 Mb/s, g = 1/256,
// alpha and rate-decrease periods and the CNP interval 50-55µs, target clamped
// on every decrease) written in NVIDIA's names over DefaultDCQCNParams.
//
// In this simulator NVIDIA's firmware defaults do not converge on a 100
// Gbit/s bottleneck: with rpg_byte_reset 32767 B a flow above ~65 Gbit/s
// completes a byte stage (fast recovery halfway back to a target that
// clamp_tgt_rate_after_time_inc keeps at the line rate) between two CNPs
// 4µs apart, so every flow settles near 80 Gbit/s and the buffer stays
// full. The paper's settings converge (see the package tests).
func PaperDCQCNParams() flowctl.DCQCNParams {
	p := flowctl.DefaultDCQCNParams()
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
