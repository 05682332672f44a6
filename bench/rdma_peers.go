package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

// Iperf3Result is what one iperf3 client run (--json) measured.
type Iperf3Result struct {
	// UDP is set for a -u run.
	UDP bool
	// Seconds is the test length.
	Seconds float64
	// SentBps and ReceivedBps are the sender's and the receiver's bits per
	// second (iperf3's 10^9 units); goodput is ReceivedBps.
	SentBps, ReceivedBps float64
	// Bytes received, and datagrams sent (UDP).
	Bytes   uint64
	Packets uint64
	// LostPercent is UDP datagram loss; Retransmits is TCP's.
	LostPercent float64
	Retransmits uint64
	// PeakBps is the best one-second interval at the sender.
	PeakBps float64
}

var errIperf3 = errors.New("iperf3 output")

// ParseIperf3 reads the JSON that `iperf3 -c ... --json` prints. An iperf3
// error (the "error" member) is returned as an error.
func ParseIperf3(data []byte) (Iperf3Result, error) {
	type sum struct {
		Seconds       float64 `json:"seconds"`
		Bytes         uint64  `json:"bytes"`
		BitsPerSecond float64 `json:"bits_per_second"`
		Packets       uint64  `json:"packets"`
		LostPercent   float64 `json:"lost_percent"`
		Retransmits   uint64  `json:"retransmits"`
	}
	var doc struct {
		Start struct {
			TestStart struct {
				Protocol string `json:"protocol"`
			} `json:"test_start"`
		} `json:"start"`
		Intervals []struct {
			Sum sum `json:"sum"`
		} `json:"intervals"`
		End struct {
			Sent     *sum `json:"sum_sent"`
			Received *sum `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return Iperf3Result{}, fmt.Errorf("%w: %w", errIperf3, err)
	}
	if doc.Error != "" {
		return Iperf3Result{}, fmt.Errorf("%w: iperf3: %s", errIperf3, doc.Error)
	}
	if doc.End.Sent == nil || doc.End.Received == nil {
		return Iperf3Result{}, fmt.Errorf("%w: no end.sum_sent / end.sum_received", errIperf3)
	}
	s, r := doc.End.Sent, doc.End.Received
	res := Iperf3Result{
		UDP: doc.Start.TestStart.Protocol == "UDP", Seconds: r.Seconds,
		SentBps: s.BitsPerSecond, ReceivedBps: r.BitsPerSecond, Bytes: r.Bytes,
		Packets: s.Packets, LostPercent: r.LostPercent, Retransmits: s.Retransmits,
	}
	for _, iv := range doc.Intervals {
		res.PeakBps = max(res.PeakBps, iv.Sum.BitsPerSecond)
	}
	if !finite(res.SentBps, res.ReceivedBps, res.PeakBps, res.Seconds, res.LostPercent) || res.Seconds < 0 {
		return Iperf3Result{}, fmt.Errorf("%w: rates out of range", errIperf3)
	}
	return res, nil
}

func finite(v ...float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// BWRow turns an iperf3 run into a bandwidth row named name, in perftest's
// units, for messages (datagrams, or writes for TCP) of size bytes: average
// is the receiver's goodput; peak is the sender's best interval, which for
// UDP counts datagrams that were then lost.
func (r Iperf3Result) BWRow(name string, size int) RDMABWResult {
	row := RDMABWResult{Test: "iperf3", Transport: name, Size: size,
		AvgMBps: r.ReceivedBps / 8 / (1 << 20), PeakMBps: r.PeakBps / 8 / (1 << 20),
		Gbps: r.ReceivedBps / 1e9, Elapsed: time.Duration(r.Seconds * float64(time.Second))}
	if size > 0 {
		row.Iterations = int(r.Bytes / uint64(size))
		row.MsgRateMpps = r.ReceivedBps / 8 / float64(size) / 1e6
	}
	if r.UDP {
		row.Note = fmt.Sprintf("iperf3 UDP %d B datagrams, -b 0: sent %.3f Gbit/s, received %.3f Gbit/s (%.1f%% lost); peak is the sender's best second",
			size, r.SentBps/1e9, r.ReceivedBps/1e9, r.LostPercent)
	} else {
		row.Note = fmt.Sprintf("iperf3 TCP, one stream, %d B writes: %.3f Gbit/s received, %d retransmits; peak is the sender's best second",
			size, r.ReceivedBps/1e9, r.Retransmits)
	}
	return row
}

// SockperfResult is what `sockperf ping-pong` printed: one-way latencies
// (sockperf reports round trip / 2).
type SockperfResult struct {
	Observations int
	Avg, Stdev   time.Duration
	Min, Max     time.Duration
	P50, P99     time.Duration
	P999         time.Duration
}

var (
	ansiEscape      = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	sockperfAvg     = regexp.MustCompile(`avg-latency=([0-9.]+) \(std-dev=([0-9.]+)`)
	sockperfObs     = regexp.MustCompile(`Total ([0-9]+) observations`)
	sockperfPercent = regexp.MustCompile(`---> percentile +([0-9.]+) = +([0-9.]+)`)
	sockperfMinMax  = regexp.MustCompile(`---> <(MIN|MAX)> observation = +([0-9.]+)`)
)

var errSockperf = errors.New("sockperf output")

// ParseSockperf reads the summary that `sockperf pp` prints (usec figures,
// colour escapes allowed).
func ParseSockperf(out []byte) (SockperfResult, error) {
	out = ansiEscape.ReplaceAll(out, nil)
	var r SockperfResult
	us := func(b []byte) (time.Duration, error) {
		v, err := strconv.ParseFloat(string(b), 64)
		if err != nil || v < 0 || v > 1e9 {
			return 0, fmt.Errorf("%w: latency %q", errSockperf, b)
		}
		return time.Duration(v * float64(time.Microsecond)), nil
	}
	m := sockperfAvg.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("%w: no avg-latency line", errSockperf)
	}
	var err error
	if r.Avg, err = us(m[1]); err != nil {
		return r, err
	}
	if r.Stdev, err = us(m[2]); err != nil {
		return r, err
	}
	if m := sockperfObs.FindSubmatch(out); m != nil {
		r.Observations, _ = strconv.Atoi(string(m[1]))
	}
	for _, m := range sockperfMinMax.FindAllSubmatch(out, -1) {
		d, err := us(m[2])
		if err != nil {
			return r, err
		}
		if bytes.Equal(m[1], []byte("MIN")) {
			r.Min = d
		} else {
			r.Max = d
		}
	}
	found := 0
	for _, m := range sockperfPercent.FindAllSubmatch(out, -1) {
		d, err := us(m[2])
		if err != nil {
			return r, err
		}
		switch string(m[1]) {
		case "50.000":
			r.P50, found = d, found|1
		case "99.000":
			r.P99, found = d, found|2
		case "99.900":
			r.P999, found = d, found|4
		}
	}
	if found != 7 {
		return r, fmt.Errorf("%w: missing the 50, 99 or 99.9 percentile", errSockperf)
	}
	return r, nil
}

// LatRow turns a sockperf run into a latency row named name.
func (r SockperfResult) LatRow(name string, size int) RDMALatResult {
	row := RDMALatResult{Test: "sockperf", Note: fmt.Sprintf("sockperf ping-pong UDP %d B, --mps=max: its own figures (it calibrates the TSC; on this VM they can be implausible)", size)}
	row.LatResult = LatResult{Transport: name, Size: size, Iterations: r.Observations,
		Min: r.Min, Max: r.Max, Typical: r.P50, Avg: r.Avg, Stdev: r.Stdev, P99: r.P99, P999: r.P999}
	return row
}
