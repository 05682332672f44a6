package telemetry

import (
	"bytes"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/internal/lathist"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// nativeCounts decodes a native histogram's positive spans and deltas into
// key -> count (zero counts left out).
func nativeCounts(h *dto.Histogram) map[int]uint64 {
	out := map[int]uint64{}
	key, idx := 0, 0
	var cnt int64
	for i, sp := range h.GetPositiveSpan() {
		if i == 0 {
			key = int(sp.GetOffset())
		} else {
			key += int(sp.GetOffset())
		}
		for j := uint32(0); j < sp.GetLength(); j++ {
			cnt += h.GetPositiveDelta()[idx]
			idx++
			if cnt != 0 {
				out[key] = uint64(cnt)
			}
			key++
		}
	}
	return out
}

var latencySamples = []time.Duration{
	0, 1, time.Nanosecond * 3, 700 * time.Nanosecond, time.Microsecond, 12 * time.Microsecond,
	12 * time.Microsecond, 13 * time.Microsecond, 99 * time.Microsecond, time.Millisecond,
	time.Millisecond + 1, 1500 * time.Microsecond, 20 * time.Millisecond, time.Second, 3 * time.Second,
}

// TestLatHistMatchesClientGolang: the native buckets of a lathist export are
// those client_golang's own native histogram of schema 2 gives the same
// observations.
func TestLatHistMatchesClientGolang(t *testing.T) {
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ref_seconds", Help: "reference",
		NativeHistogramBucketFactor: 1.19, NativeHistogramZeroThreshold: lathist.ZeroThreshold,
	})
	var h lathist.Histogram
	for _, d := range latencySamples {
		ref.Observe(d.Seconds())
		h.Observe(d)
	}
	var want dto.Metric
	if err := ref.Write(&want); err != nil {
		t.Fatal(err)
	}
	desc := prometheus.NewDesc("x_seconds", "x", nil, nil)
	snap := h.Snapshot()
	m, err := newLatHistMetric(desc, 0, &snap)
	if err != nil {
		t.Fatal(err)
	}
	var got dto.Metric
	if err := m.Write(&got); err != nil {
		t.Fatal(err)
	}
	wh, gh := want.GetHistogram(), got.GetHistogram()
	if gh.GetSchema() != wh.GetSchema() || gh.GetSchema() != 2 {
		t.Fatalf("schema %d, client_golang %d, want 2", gh.GetSchema(), wh.GetSchema())
	}
	if gh.GetZeroCount() != wh.GetZeroCount() || gh.GetSampleCount() != wh.GetSampleCount() {
		t.Errorf("zero %d count %d, client_golang %d and %d", gh.GetZeroCount(), gh.GetSampleCount(), wh.GetZeroCount(), wh.GetSampleCount())
	}
	if math.Abs(gh.GetSampleSum()-wh.GetSampleSum()) > 1e-9 {
		t.Errorf("sum %v, client_golang %v", gh.GetSampleSum(), wh.GetSampleSum())
	}
	gc, wc := nativeCounts(gh), nativeCounts(wh)
	if len(gc) != len(wc) {
		t.Errorf("%d native buckets, client_golang %d: %v vs %v", len(gc), len(wc), gc, wc)
	}
	for k, n := range wc {
		if gc[k] != n {
			t.Errorf("bucket %d: %d, client_golang %d", k, gc[k], n)
		}
	}
	// Classic buckets: cumulative and exact at their bounds.
	for _, b := range gh.GetBucket() {
		var n uint64
		for _, d := range latencySamples {
			if d.Seconds() <= b.GetUpperBound() {
				n++
			}
		}
		if b.GetCumulativeCount() != n {
			t.Errorf("classic bucket le=%g: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), n)
		}
	}
	if n := len(gh.GetBucket()); n != (classicLastKey-classicFirstKey)/classicStep+1 {
		t.Errorf("%d classic buckets", n)
	}
}

// TestRoCEv2OperationLatency: the collector exports one histogram per
// class that completed something, readable from the text format with
// percentiles within a bucket of the truth.
func TestRoCEv2OperationLatency(t *testing.T) {
	net := porttest.NewNetwork(porttest.NetworkOptions{MTU: 4200, QueueLen: 64})
	port, err := net.NewPort(netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), rocev2.UDPPort))
	if err != nil {
		t.Fatal(err)
	}
	d, err := rocev2.Open(rocev2.Options{Port: port, Name: "lat0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	st := d.Stats()
	for i := 0; i < 100; i++ {
		st.OpLatency[rocev2.OpClassWrite].Observe(time.Duration(i+1) * time.Microsecond) // 1..100 µs
	}
	st.OpLatency[rocev2.OpClassRead].Observe(2 * time.Millisecond)
	c := NewRoCEv2Collector(d, RoCEv2CollectorOptions{})
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if mf.GetName() != "onet_rocev2_operation_latency_seconds" {
			continue
		}
		if len(mf.GetMetric()) != 2 {
			t.Fatalf("%d series, want write and read only", len(mf.GetMetric()))
		}
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	text := buf.String()
	for _, want := range []string{
		`onet_rocev2_operation_latency_seconds_count{device="lat0",op="write"} 100`,
		`onet_rocev2_operation_latency_seconds_count{device="lat0",op="read"} 1`,
		`onet_rocev2_operation_latency_seconds_sum{device="lat0",op="write"} 0.00505`,
		`onet_rocev2_operation_latency_seconds_bucket{device="lat0",op="write",le="+Inf"} 100`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q:\n%s", want, text)
		}
	}
	// Percentiles as onetdp top and histogram_quantile compute them.
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var write *dto.Histogram
	for _, m := range mf["onet_rocev2_operation_latency_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "op" && l.GetValue() == "write" {
				write = m.GetHistogram()
			}
		}
	}
	if write == nil {
		t.Fatal("no write histogram in the text exposition")
	}
	for _, q := range []struct{ q, want float64 }{{0.5, 50e-6}, {0.95, 95e-6}, {0.99, 99e-6}} {
		got := classicQuantile(q.q, write)
		if got < q.want/1.42 || got > q.want*1.42 {
			t.Errorf("P%.0f = %g s, want %g within a √2 bucket", 100*q.q, got, q.want)
		}
	}
}

// classicQuantile is histogram_quantile over classic buckets.
func classicQuantile(q float64, h *dto.Histogram) float64 {
	rank := q * float64(h.GetSampleCount())
	lower, prev := 0.0, 0.0
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if c >= rank {
			return lower + (b.GetUpperBound()-lower)*(rank-prev)/(c-prev)
		}
		lower, prev = b.GetUpperBound(), c
	}
	return lower
}
