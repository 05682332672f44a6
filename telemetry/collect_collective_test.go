package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/opennetworks/onetdp/collective"
)

func TestCollectiveCollector(t *testing.T) {
	var s collective.Stats
	ar := &s.Ops[collective.OpAllReduce]
	for _, d := range []time.Duration{1500 * time.Nanosecond, 3 * time.Microsecond, 3 * time.Microsecond} {
		ar.Completed.Add(1)
		ar.Bytes.Add(64)
		ar.Latency.Observe(d)
	}
	ar.Errors.Add(1)
	c := NewCollectiveCollector(&s, map[string]string{"rank": "0"})
	want := `
# HELP onet_collective_bytes_total Bytes of completed collective operations (nccl-tests' size).
# TYPE onet_collective_bytes_total counter
onet_collective_bytes_total{op="allreduce",rank="0"} 192
# HELP onet_collective_errors_total Collective operations that failed.
# TYPE onet_collective_errors_total counter
onet_collective_errors_total{op="allreduce",rank="0"} 1
# HELP onet_collective_operations_total Collective operations completed, with or without error.
# TYPE onet_collective_operations_total counter
onet_collective_operations_total{op="allreduce",rank="0"} 3
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "onet_collective_operations_total", "onet_collective_errors_total", "onet_collective_bytes_total"); err != nil {
		t.Fatal(err)
	}
	// 1.5 µs lies in [1024, 2048) ns, 3 µs in [2048, 4096): cumulative 1
	// at le=2.048e-06, 3 at le=4.096e-06 and above.
	out, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain, "onet_collective_operation_duration_seconds")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`onet_collective_operation_duration_seconds_bucket{op="allreduce",rank="0",le="1.024e-06"} 0`,
		`onet_collective_operation_duration_seconds_bucket{op="allreduce",rank="0",le="2.048e-06"} 1`,
		`onet_collective_operation_duration_seconds_bucket{op="allreduce",rank="0",le="4.096e-06"} 3`,
		`onet_collective_operation_duration_seconds_bucket{op="allreduce",rank="0",le="+Inf"} 3`,
		`onet_collective_operation_duration_seconds_count{op="allreduce",rank="0"} 3`,
		`onet_collective_operation_duration_seconds_sum{op="allreduce",rank="0"} 7.5e-06`,
	} {
		if !strings.Contains(string(out), line) {
			t.Errorf("missing %s in\n%s", line, out)
		}
	}
	if strings.Contains(string(out), `op="broadcast"`) {
		t.Error("an operation that never ran is reported")
	}
	if n := testutil.CollectAndCount(NewCollectiveCollector(nil, nil)); n != 0 {
		t.Errorf("nil stats gave %d series", n)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}
