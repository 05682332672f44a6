package bench

import (
	"fmt"
	"io"
)

// perftest's report layout (perftest_parameters.h: RESULT_LINE, RESULT_FMT,
// REPORT_FMT, RESULT_FMT_LAT, REPORT_FMT_LAT), in Go verbs.
const (
	perftestLine     = "---------------------------------------------------------------------------------------\n"
	perftestBWHeader = " #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]\n"
	perftestBWRow    = " %-7d    %-10d       %-7.2f            %-7.2f\t\t   %-7.6f\n"
	perftestLatHead  = " #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] \n"
	perftestLatRow   = " %-7d %d          %-7.2f        %-7.2f      %-7.2f  \t       %-7.2f     \t%-7.2f\t\t%-7.2f \t\t%-7.2f\n"
)

// RDMATitle is perftest's banner for a test: "RDMA_Write BW Test",
// "Send Latency Test", ...
func RDMATitle(op RDMAOp, bw bool) string {
	if bw {
		return op.title() + " BW Test"
	}
	return op.title() + " Latency Test"
}

// WriteRDMABanner prints perftest's opening: a line, the centred title and
// "name : value" parameter lines, and the closing line, after which the
// caller prints the local and remote address lines.
func WriteRDMABanner(w io.Writer, op RDMAOp, bw bool, params [][2]string) {
	fmt.Fprint(w, perftestLine)
	fmt.Fprintf(w, "                    %s\n", RDMATitle(op, bw))
	for _, kv := range params {
		fmt.Fprintf(w, " %-16s: %s\n", kv[0], kv[1])
	}
	fmt.Fprint(w, perftestLine)
}

// WriteRDMABWReport prints bandwidth rows exactly as ib_write_bw does
// after the address lines: a line, the header, one row per size, a line.
func WriteRDMABWReport(w io.Writer, rows []RDMABWResult) {
	fmt.Fprint(w, perftestLine)
	fmt.Fprint(w, perftestBWHeader)
	for _, r := range rows {
		fmt.Fprintf(w, perftestBWRow, r.Size, r.Iterations, r.PeakMBps, r.AvgMBps, r.MsgRateMpps)
	}
	fmt.Fprint(w, perftestLine)
}

// WriteRDMALatReport prints latency rows exactly as ib_write_lat does.
func WriteRDMALatReport(w io.Writer, rows []RDMALatResult) {
	fmt.Fprint(w, perftestLine)
	fmt.Fprint(w, perftestLatHead)
	for _, r := range rows {
		fmt.Fprintf(w, perftestLatRow, r.Size, r.Iterations, usec(r.Min), usec(r.Max), usec(r.Typical),
			usec(r.Avg), usec(r.Stdev), usec(r.P99), usec(r.P999))
	}
	fmt.Fprint(w, perftestLine)
}

// WriteRDMABWTable prints every transport's (and peer's) rows side by side
// in perftest's columns, with a transport column first and Gbit/s last
// (the unit iperf3 speaks), and each row's note below the table.
func WriteRDMABWTable(w io.Writer, rows []RDMABWResult) {
	fmt.Fprintf(w, "%-12s %8s %11s %16s %19s %14s %12s\n",
		"transport", "#bytes", "#iterations", "BW peak[MB/sec]", "BW average[MB/sec]", "MsgRate[Mpps]", "BW[Gb/sec]")
	for _, r := range rows {
		fmt.Fprintf(w, "%-12s %8d %11d %16.2f %19.2f %14.6f %12.3f\n",
			r.Transport, r.Size, r.Iterations, r.PeakMBps, r.AvgMBps, r.MsgRateMpps, r.Gbps)
	}
	writeNotes(w, len(rows), func(i int) (string, string) { return rows[i].Transport, rows[i].Note })
}

// WriteRDMALatTable prints every transport's (and peer's) latency rows side
// by side (WriteLatTable's layout) with each row's note below.
func WriteRDMALatTable(w io.Writer, rows []RDMALatResult) {
	lat := make([]LatResult, len(rows))
	for i, r := range rows {
		lat[i] = r.LatResult
	}
	WriteLatTable(w, lat)
	writeNotes(w, len(rows), func(i int) (string, string) { return rows[i].Transport, rows[i].Note })
}

func writeNotes(w io.Writer, n int, row func(int) (string, string)) {
	for i := 0; i < n; i++ {
		if name, note := row(i); note != "" {
			fmt.Fprintf(w, "  %s: %s\n", name, note)
		}
	}
}
