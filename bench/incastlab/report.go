package incastlab

import (
	"errors"
	"fmt"
	"io"

	"github.com/opennetworks/onetdp/lab"
)

// ErrNoRuns is returned by WriteReport for a report without runs.
var ErrNoRuns = errors.New("incast: no runs")

// WriteReport prints the runs side by side: one row per flow and mode,
// then one summary row per mode.
func WriteReport(w io.Writer, rep *Report) error {
	if len(rep.Runs) == 0 {
		return ErrNoRuns
	}
	fmt.Fprintf(w, "incast: %d senders -> h0 over %s, bottleneck %s, %s RDMA WRITEs for %v\n",
		rep.Senders, rep.Transport, lab.FormatRate(rep.BottleneckBps), lab.FormatSize(uint64(rep.Size)), rep.Duration)
	fmt.Fprintf(w, "%-5s %-5s %16s %12s %9s %9s %9s %15s %16s\n", "mode", "flow", "goodput[Gb/s]", "retransmits", "timeouts", "seq_naks", "cnps_rx", "mean_rate[Gb/s]", "final_rate[Gb/s]")
	for _, r := range rep.Runs {
		for _, s := range r.Senders {
			fmt.Fprintf(w, "%-5s %-5s %16.3f %12d %9d %9d %9d %15.3f %16.3f\n", r.Mode, s.Host, s.Gbps, s.Retransmits, s.Timeouts, s.SeqNAKs, s.CNPs, s.MeanRateGbps, s.FinalRateGbps)
		}
	}
	fmt.Fprintf(w, "\n%-5s %18s %12s %7s %10s %10s %10s %10s %12s\n", "mode", "aggregate[Gb/s]", "utilization", "jain", "tbf_drops", "rx_drops", "ce_marks", "cnps_sent", "retransmits")
	for _, r := range rep.Runs {
		var retx uint64
		for _, s := range r.Senders {
			retx += s.Retransmits
		}
		fmt.Fprintf(w, "%-5s %18.3f %11.1f%% %7.3f %10d %10d %10d %10d %12d\n", r.Mode, r.AggregateGbps, 100*r.Utilization, r.Jain,
			r.Bottleneck.Drops, r.ReceiverDrops, r.Marker.CEMarked, r.CNPsSent, retx)
	}
	return nil
}
