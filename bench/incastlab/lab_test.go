package incastlab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/bench/incastlab"
	"github.com/opennetworks/onetdp/internal/testutil"
)

// TestIncastLab is issue 4's lab experiment: 3 senders into one receiver
// through a 500 Mbit/s TBF with the ECN marker in front, without flow
// control, with DCQCN and with the delay controller. The bounds are generous (the machine is shared with the other
// packages' tests); the note of issue 4 has the measured figures.
func TestIncastLab(t *testing.T) {
	testutil.RequireRoot(t)
	if raceEnabled {
		t.Skip("the race detector slows the software senders several-fold: they no longer overrun the bottleneck, and every bound here is about rates")
	}
	testutil.Exclusive(t)
	// The rate bounds depend on the CPU the senders get: the delay
	// controller reads a starved host's slow turnaround as queueing and
	// backs off (go test runs other packages beside this one). A run that
	// misses them is run once more, and the second must meet them.
	const attempts = 2
	for i := 1; ; i++ {
		rep := runIncast(t)
		err := rateBounds(rep)
		if err == nil {
			return
		}
		if i == attempts {
			t.Fatalf("run %d of %d: %v", i, attempts, err)
		}
		t.Logf("run %d of %d: %v; running again", i, attempts, err)
	}
}

// runIncast runs the experiment and checks what does not depend on rates:
// the bottleneck overrun without flow control, the marker and the
// notification point at work, DCQCN below the line rate, the report.
func runIncast(t *testing.T) *incastlab.Report {
	t.Helper()
	var progress bytes.Buffer
	rep, err := incastlab.Run(context.Background(), incastlab.Options{
		LabName:  testutil.UniqueName("inc"),
		Incast:   bench.IncastOptions{Duration: 3 * time.Second},
		Progress: &progress,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	var out bytes.Buffer
	if err := incastlab.WriteReport(&out, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s%s", progress.String(), out.String())
	if len(rep.Runs) != 3 || rep.Runs[0].Mode != "off" || rep.Runs[1].Mode != "dcqcn" || rep.Runs[2].Mode != "delay" {
		t.Fatalf("runs %+v, want off, dcqcn, delay", rep.Runs)
	}
	off, dcqcn := rep.Runs[0], rep.Runs[1]
	if off.Bottleneck.Drops == 0 {
		t.Fatal("without flow control the bottleneck dropped nothing: the experiment does not overrun it")
	}
	if off.Marker.CEMarked == 0 || dcqcn.Marker.CEMarked == 0 || dcqcn.CNPsSent == 0 {
		t.Fatalf("CE marks %d/%d, CNPs %d: the marker or the notification point did nothing", off.Marker.CEMarked, dcqcn.Marker.CEMarked, dcqcn.CNPsSent)
	}
	for _, s := range dcqcn.Senders {
		if s.CNPs == 0 || s.FinalRateGbps <= 0 || s.MeanRateGbps >= incastlab.DefaultLineRate/1e9 {
			t.Errorf("dcqcn %s: %d CNPs, mean rate %.3f Gbit/s: want DCQCN below the line rate", s.Host, s.CNPs, s.MeanRateGbps)
		}
	}
	var back incastlab.Report
	js, _ := json.Marshal(rep)
	if err := json.Unmarshal(js, &back); err != nil || len(back.Runs) != 3 || back.Runs[1].Senders[0].Host != "h1" {
		t.Fatalf("json round trip: %v, %s", err, js)
	}
	if !strings.Contains(out.String(), "jain") {
		t.Fatalf("report lacks the summary:\n%s", out.String())
	}
	return rep
}

// rateBounds checks issue 4's bounds (Jain >= 0.9, >= 85 % of the
// bottleneck, drops at most a tenth of the run without flow control),
// loosened for a machine shared with other tests: the delay controller
// meets them on a quiet one, DCQCN's sawtooth stays near 77 % (see the
// issue note). DCQCN's drops come in its first round trips at the line
// rate and vary from 0 to about half of the off run's between runs.
func rateBounds(rep *incastlab.Report) error {
	off, dcqcn, delay := rep.Runs[0], rep.Runs[1], rep.Runs[2]
	var errs []error
	if delay.Jain < 0.9 || delay.Utilization < 0.7 || delay.Bottleneck.Drops > off.Bottleneck.Drops/4 {
		errs = append(errs, fmt.Errorf("delay: jain %.3f, utilization %.2f, drops %d (off: %d): want >= 0.9, >= 0.7, <= a quarter",
			delay.Jain, delay.Utilization, delay.Bottleneck.Drops, off.Bottleneck.Drops))
	}
	if dcqcn.Jain < 0.8 || dcqcn.Utilization < 0.5 || dcqcn.Bottleneck.Drops >= off.Bottleneck.Drops {
		errs = append(errs, fmt.Errorf("dcqcn: jain %.3f, utilization %.2f, drops %d (off: %d): want >= 0.8, >= 0.5, fewer",
			dcqcn.Jain, dcqcn.Utilization, dcqcn.Bottleneck.Drops, off.Bottleneck.Drops))
	}
	return errors.Join(errs...)
}
