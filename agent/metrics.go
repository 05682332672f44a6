package agent

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/opennetworks/onetdp/bpf"
	"github.com/opennetworks/onetdp/telemetry"
)

// metrics is the agent's own collector: attach state and fault settings of
// each interface, read at scrape time, and the control API's counters. The
// dispatchers' counters come from telemetry.XDPCollector (see collectors).
type metrics struct {
	a *Agent

	faultPPM, attached *prometheus.Desc

	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec

	mu        sync.Mutex // guards errCounts
	errCounts map[string]uint64
}

func newMetrics(a *Agent) *metrics {
	d := func(sub, name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(telemetry.Namespace, sub, name), help, labels, nil)
	}
	m := &metrics{
		a:        a,
		faultPPM: d("xdp", "fault_drop_ppm", "Fault injection drop probability in parts per million.", "interface", "class"),
		attached: d("agent", "xdp_attached", "1 when netlink shows the dispatcher attached to the interface.", "interface", "mode"),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: telemetry.Namespace, Subsystem: "agent", Name: "control_requests_total",
			Help: "Well-formed control API requests by op.",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: telemetry.Namespace, Subsystem: "agent", Name: "control_errors_total",
			Help: "Control API requests answered with an error, by code.",
		}, []string{"code"}),
		errCounts: map[string]uint64{},
	}
	for _, code := range []string{CodeMalformed, CodeUnknownOp, CodeBadArgument, CodeFailed} {
		m.errors.WithLabelValues(code) // present at 0 from the start
	}
	return m
}

func (m *metrics) request(op string) { m.requests.WithLabelValues(op).Inc() }

func (m *metrics) controlError(code string) {
	m.errors.WithLabelValues(code).Inc()
	m.mu.Lock()
	m.errCounts[code]++
	m.mu.Unlock()
}

func (m *metrics) controlErrorCounts() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]uint64, len(m.errCounts))
	for k, v := range m.errCounts {
		out[k] = v
	}
	return out
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.faultPPM
	ch <- m.attached
	m.requests.Describe(ch)
	m.errors.Describe(ch)
}

// Collect implements prometheus.Collector; it reads the BPF maps now.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, ifc := range m.a.ifaces {
		mode, _ := ifc.disp.Mode()
		up := 0.0
		if m.a.attached(ifc) {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(m.attached, prometheus.GaugeValue, up, ifc.name, mode)
		for c := bpf.Class(0); c < bpf.NumClasses; c++ {
			cl := c.String()
			if ppm, err := ifc.disp.Fault(c); err == nil {
				ch <- prometheus.MustNewConstMetric(m.faultPPM, prometheus.GaugeValue, float64(ppm), ifc.name, cl)
			}
		}
	}
	m.requests.Collect(ch)
	m.errors.Collect(ch)
}

var _ prometheus.Collector = (*metrics)(nil)

// collectors returns the agent's collector and one telemetry.XDPCollector
// per interface (labelled interface=<name>).
func (a *Agent) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{a.metrics}
	for _, ifc := range a.ifaces {
		cs = append(cs, telemetry.NewXDPCollector(ifc.disp, telemetry.XDPCollectorOptions{
			Labels: prometheus.Labels{"interface": ifc.name},
		}))
		if ifc.ecn != nil {
			cs = append(cs, telemetry.NewECNMarkerCollector(ifc.ecn, prometheus.Labels{"interface": ifc.name}))
		}
	}
	if a.congestion != nil {
		cs = append(cs, a.congestion)
	}
	if a.lldp != nil {
		cs = append(cs, telemetry.NewLLDPCollector(a.lldp, nil))
	}
	return cs
}
