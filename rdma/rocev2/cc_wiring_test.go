package rocev2_test

import (
	"errors"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/flowctl"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// TestCCDefaultNone: without flow-control options the engine reports none
// and its QPs have no rate or window of a controller.
func TestCCDefaultNone(t *testing.T) {
	_, a, b := fakePair(t, porttest.NetworkOptions{}, pairOptions{})
	if kind, params := a.dev.FlowControl(); kind != rocev2.FlowControlNone || params != nil {
		t.Fatalf("FlowControl() = %q, %v; want none, nil", kind, params)
	}
	writeAll(t, a, b, 256<<10, 64<<10, 5*time.Second)
	st, ok := a.dev.QPFlowStats(a.qp.QPN())
	if !ok {
		t.Fatal("QPFlowStats: no such QP")
	}
	if st.Kind != rocev2.FlowControlNone || st.Rate != 0 || st.Window != 0 || st.SentBytes != 0 || st.PacketWindow != 256 {
		t.Fatalf("stats %+v; want kind none, nothing reported, packet window 256", st)
	}
	if _, ok := a.dev.QPFlowStats(0xFFFFFF); ok {
		t.Fatal("QPFlowStats of an unknown QP reported ok")
	}
}

// TestCCSettings: the choice and parameters are readable and settable at
// run time; bad options are refused with ErrFlowControl.
func TestCCSettings(t *testing.T) {
	p := flowctl.DefaultDCQCNParams()
	p.RPGMinRate = 10
	_, a, _ := fakePair(t, porttest.NetworkOptions{}, pairOptions{engine: rocev2.Options{
		FlowControl: rocev2.FlowControlOptions{Kind: rocev2.FlowControlDCQCN, LineRate: 1e9, DCQCN: p},
	}})
	kind, params := a.dev.FlowControl()
	if kind != rocev2.FlowControlDCQCN || params.(flowctl.DCQCNParams) != p {
		t.Fatalf("FlowControl() = %q, %+v; want dcqcn with rpg_min_rate 10", kind, params)
	}
	st, _ := a.dev.QPFlowStats(a.qp.QPN())
	if st.Kind != rocev2.FlowControlDCQCN || st.Rate != 1e9 {
		t.Fatalf("QP stats %+v; want dcqcn at the 1 Gbit/s line rate", st)
	}
	p.RPGAIRate = 40
	if err := a.dev.SetDCQCNParams(p); err != nil {
		t.Fatal(err)
	}
	if _, params := a.dev.FlowControl(); params.(flowctl.DCQCNParams).RPGAIRate != 40 {
		t.Fatalf("after SetDCQCNParams: %+v", params)
	}
	if o := a.dev.FlowControlOptions(); o.LineRate != 1e9 {
		t.Fatalf("SetDCQCNParams lost the line rate: %+v", o)
	}
	bad := p
	bad.RPGGD = 0
	if err := a.dev.SetDCQCNParams(bad); !errors.Is(err, rocev2.ErrFlowControl) || !errors.Is(err, flowctl.ErrBadParam) {
		t.Fatalf("SetDCQCNParams(rpg_gd 0) = %v; want ErrFlowControl and flowctl.ErrBadParam", err)
	}
	if err := a.dev.SetFlowControl(rocev2.FlowControlOptions{Kind: "bbr"}); !errors.Is(err, rocev2.ErrFlowControl) {
		t.Fatalf("SetFlowControl(bbr) = %v; want ErrFlowControl", err)
	}
	if err := a.dev.SetFlowControl(rocev2.FlowControlOptions{Kind: rocev2.FlowControlDelay}); err != nil {
		t.Fatal(err)
	}
	if kind, params := a.dev.FlowControl(); kind != rocev2.FlowControlDelay {
		t.Fatalf("FlowControl() = %q, %v; want delay", kind, params)
	}
	// A new QP gets the new kind; the old one keeps its DCQCN.
	s := newSide(t, a.dev, pairOptions{depth: 16, bufSize: 4096}, 0)
	if st, _ := a.dev.QPFlowStats(s.qp.QPN()); st.Kind != rocev2.FlowControlDelay || st.Window <= 0 {
		t.Fatalf("new QP stats %+v; want delay with a window", st)
	}
	if st, _ := a.dev.QPFlowStats(a.qp.QPN()); st.Kind != rocev2.FlowControlDCQCN {
		t.Fatalf("old QP stats %+v; want dcqcn", st)
	}
	if _, err := rocev2.Open(rocev2.Options{Port: a.dev.Port(), FlowControl: rocev2.FlowControlOptions{Kind: "x"}}); !errors.Is(err, rocev2.ErrFlowControl) {
		t.Fatalf("Open with kind x = %v; want ErrFlowControl", err)
	}
}

// TestCCNotificationPointFromParams: with DCQCN chosen and no CNPInterval,
// the notification point's limiter takes min_time_between_cnps.
func TestCCNotificationPointFromParams(t *testing.T) {
	p := flowctl.DefaultDCQCNParams()
	p.MinTimeBetweenCNPs = 2_000_000_000 // half an hour: one CNP per QP
	p.RPGMinRate = 100
	_, a, b := fakePair(t, porttest.NetworkOptions{CEMarkPPM: 1_000_000}, pairOptions{engine: rocev2.Options{
		FlowControl: rocev2.FlowControlOptions{Kind: rocev2.FlowControlDCQCN, LineRate: 1e9, DCQCN: p},
	}})
	writeAll(t, a, b, 100<<10, 100<<10, 5*time.Second)
	if got := b.dev.Stats().CNPsSent.Load(); got != 1 {
		t.Fatalf("responder sent %d CNPs, want 1", got)
	}
	st, _ := b.dev.QPFlowStats(b.qp.QPN())
	if st.CNPsSent != 1 || st.CNPsLimited != 99 {
		t.Fatalf("responder QP stats %+v; want 1 CNP sent, 99 CE marks limited", st)
	}
	var seen []uint32
	b.dev.EachQPFlowStats(func(qpn uint32, s rocev2.QPFlowStats) {
		seen = append(seen, qpn)
		if s != st {
			t.Errorf("EachQPFlowStats(%#x) = %+v, QPFlowStats %+v", qpn, s, st)
		}
	})
	if len(seen) != 1 || seen[0] != b.qp.QPN() {
		t.Fatalf("EachQPFlowStats saw %v, want [%#x]", seen, b.qp.QPN())
	}
}
