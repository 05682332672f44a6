package sim

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// WriteCSV writes the series as CSV: a header "time_us,queue_bytes,
// flow0_gbps,...,flowN-1_gbps,flow0_allowed_gbps,...", then one row per
// sample (time in µs, queue in bytes, goodput and allowed rate in Gbit/s).
func (se *Series) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("time_us,queue_bytes")
	for i := range se.Flows {
		fmt.Fprintf(bw, ",flow%d_gbps", i)
	}
	for i := range se.Flows {
		fmt.Fprintf(bw, ",flow%d_allowed_gbps", i)
	}
	bw.WriteByte('\n')
	var buf []byte
	for _, s := range se.Samples {
		buf = strconv.AppendFloat(buf[:0], float64(s.T.Nanoseconds())/1e3, 'f', 3, 64)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(s.QueueBytes), 10)
		for _, g := range s.Goodput {
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, g/1e9, 'f', 4, 64)
		}
		for _, a := range s.Allowed {
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, a/1e9, 'f', 4, 64)
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("write sim csv: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write sim csv: %w", err)
	}
	return nil
}
