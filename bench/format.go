package bench

import (
	"fmt"
	"io"
	"time"
)

func usec(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// WriteLatTable prints results as perftest's latency tools do
// (ib_send_lat), one row per transport.
func WriteLatTable(w io.Writer, rows []LatResult) {
	fmt.Fprintf(w, "%-10s %7s %11s %10s %10s %12s %10s %11s %12s %14s\n",
		"transport", "#bytes", "#iterations", "t_min[us]", "t_max[us]", "t_typical[us]", "t_avg[us]", "t_stdev[us]", "99%[us]", "99.9%[us]")
	for _, r := range rows {
		fmt.Fprintf(w, "%-10s %7d %11d %10.2f %10.2f %12.2f %10.2f %11.2f %12.2f %14.2f\n",
			r.Transport, r.Size, r.Iterations, usec(r.Min), usec(r.Max), usec(r.Typical), usec(r.Avg), usec(r.Stdev), usec(r.P99), usec(r.P999))
	}
}

// WritePPSTable prints packet-rate results in perftest's bandwidth layout
// (#bytes #iterations BW peak BW average MsgRate), one row per transport,
// plus the delivery figures a packet-rate test needs.
func WritePPSTable(w io.Writer, rows []PPSResult) {
	fmt.Fprintf(w, "%-10s %7s %11s %11s %14s %14s %12s %10s\n",
		"transport", "#bytes", "#sent", "#received", "BW average[Gb/s]", "MsgRate[Mpps]", "lost[%]", "corrupt")
	for _, r := range rows {
		lost := 0.0
		if r.Sent > 0 {
			lost = 100 * float64(r.Sent-min(r.Sent, r.Received)) / float64(r.Sent)
		}
		fmt.Fprintf(w, "%-10s %7d %11d %11d %16.3f %14.3f %12.2f %10d\n",
			r.Transport, r.Size, r.Sent, r.Received, r.Gbps, r.PPS/1e6, lost, r.Corrupted)
	}
}
