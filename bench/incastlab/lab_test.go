package incastlab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/bench"
	"github.com/opennetworks/onetdp/bench/incastlab"
	"github.com/opennetworks/onetdp/internal/testutil"
)

// TestIncastLab is issue 4's lab experiment: 3 senders into one receiver
// through a 500 Mbit/s TBF with the ECN marker in front, without and with
// DCQCN. The bounds are generous (the machine is shared with the other
// packages' tests); the note of issue 4 has the measured figures.
func TestIncastLab(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.Exclusive(t)
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
	if len(rep.Runs) != 2 || rep.Runs[0].Mode != "off" || rep.Runs[1].Mode != "on" {
		t.Fatalf("runs %+v, want off then on", rep.Runs)
	}
	off, on := rep.Runs[0], rep.Runs[1]
	if off.Bottleneck.Drops == 0 {
		t.Fatal("without flow control the bottleneck dropped nothing: the experiment does not overrun it")
	}
	if off.Marker.CEMarked == 0 || on.Marker.CEMarked == 0 || on.CNPsSent == 0 {
		t.Fatalf("CE marks %d/%d, CNPs %d: the marker or the notification point did nothing", off.Marker.CEMarked, on.Marker.CEMarked, on.CNPsSent)
	}
	if on.Bottleneck.Drops > off.Bottleneck.Drops/4 {
		t.Errorf("drops with DCQCN %d, without %d: want at most a quarter", on.Bottleneck.Drops, off.Bottleneck.Drops)
	}
	if on.Jain < 0.8 {
		t.Errorf("jain with DCQCN %.3f, want >= 0.8", on.Jain)
	}
	if on.Utilization < 0.5 {
		t.Errorf("utilization with DCQCN %.2f, want >= 0.5", on.Utilization)
	}
	for _, s := range on.Senders {
		if s.CNPs == 0 || s.FinalRateGbps <= 0 || s.MeanRateGbps >= incastlab.DefaultLineRate/1e9 {
			t.Errorf("%s: %d CNPs, mean rate %.3f Gbit/s: want DCQCN below the line rate", s.Host, s.CNPs, s.MeanRateGbps)
		}
	}
	var back incastlab.Report
	js, _ := json.Marshal(rep)
	if err := json.Unmarshal(js, &back); err != nil || len(back.Runs) != 2 || back.Runs[1].Senders[0].Host != "h1" {
		t.Fatalf("json round trip: %v, %s", err, js)
	}
	if !strings.Contains(out.String(), "jain") {
		t.Fatalf("report lacks the summary:\n%s", out.String())
	}
}
