package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

	dto "github.com/prometheus/client_model/go"

	"github.com/opennetworks/onetdp/agent"
	"github.com/opennetworks/onetdp/telemetry/system"
)

// topOptions are the flags of `onetdp top`.
type topOptions struct {
	Socket   string
	Metrics  string
	Interval time.Duration
	Flows    int
}

func newTopCmd() *cobra.Command {
	var (
		o    topOptions
		once bool
	)
	c := &cobra.Command{
		Use:   "top",
		Short: "Live dashboard of a running agent: bandwidth, classes, top flows, CE/CNP, latency, CPU, warnings",
		Long: `top polls the agent every --interval (its control socket for interface status,
class counters and flows; its /metrics for RoCEv2 CNPs, link counters and
latency histograms) and this host's /proc/stat for CPU per core, and draws
rates computed from counter deltas. Interface rx/tx bytes come from the
onet_link_* metrics when exported, else from local netlink (run top in the
agent's network namespace).

Keys: q quits, p pauses, s changes the flow sort (bytes/s, bytes, packets).
--once (or a stdout that is not a terminal) prints one frame, computed over
one --interval, and exits (non-zero when the agent is unreachable).`,
		Example: `  onetdp top
  onetdp top --socket /run/onetdp/h0.sock --metrics http://127.0.0.1:9469/metrics --interval 2s
  onetdp top --once > frame.txt`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if o.Interval <= 0 {
				return fmt.Errorf("--interval must be positive, got %v", o.Interval)
			}
			if once || !isTerminal(os.Stdout) {
				return topOnce(c.Context(), c.OutOrStdout(), o)
			}
			p := tea.NewProgram(newTopTUI(o), tea.WithAltScreen(), tea.WithContext(c.Context()))
			_, err := p.Run()
			if err != nil {
				return fmt.Errorf("top: %w", err)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.Socket, "socket", agent.DefaultControlSocket, "agent control socket")
	f.StringVar(&o.Metrics, "metrics", "http://"+agent.DefaultMetricsAddr+"/metrics", `agent metrics URL ("off" to skip)`)
	f.DurationVar(&o.Interval, "interval", time.Second, "poll interval")
	f.IntVar(&o.Flows, "flows", 10, "flows shown")
	f.BoolVar(&once, "once", false, "print one text frame and exit")
	return c
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// topOnce samples twice, one interval apart, and prints the frame.
func topOnce(ctx context.Context, w io.Writer, o topOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	prev := pollTop(ctx, o)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(o.Interval):
	}
	cur := pollTop(ctx, o)
	if _, err := io.WriteString(w, renderTop(computeTopView(prev, cur, sortByRate, o.Flows))); err != nil {
		return err
	}
	if cur.StatusErr != nil {
		return fmt.Errorf("top: agent unreachable: %w", cur.StatusErr)
	}
	return nil
}

// pollTop reads the agent, its metrics and the local CPU counters once.
func pollTop(ctx context.Context, o topOptions) *topSample {
	s := &topSample{At: time.Now()}
	if cl, err := agent.Dial(o.Socket); err != nil {
		s.StatusErr = err
	} else {
		st, err := cl.Status()
		if err != nil {
			s.StatusErr = err
		} else {
			s.Status = &st
			s.Flows, _ = cl.Flows(agent.DefaultFlowLimit)
		}
		cl.Close()
	}
	if o.Metrics != "off" {
		s.Metrics, s.MetricsErr = scrapeMetrics(ctx, o.Metrics)
	}
	s.Links = linkCounters(s)
	s.CPU, _ = system.ReadCPUTimes("/proc")
	return s
}

// linkCounters takes rx/tx bytes per interface from onet_link_* when the
// metrics have them, else from netlink in this namespace.
func linkCounters(s *topSample) map[string]topLinkCounters {
	out := map[string]topLinkCounters{}
	if rx, ok := s.Metrics["onet_link_rx_bytes_total"]; ok {
		tx := s.Metrics["onet_link_tx_bytes_total"]
		byIface := func(mf *dto.MetricFamily, set func(*topLinkCounters, uint64)) {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "interface" {
						lc := out[l.GetValue()]
						set(&lc, uint64(m.GetCounter().GetValue()))
						out[l.GetValue()] = lc
					}
				}
			}
		}
		byIface(rx, func(c *topLinkCounters, v uint64) { c.RxBytes = v })
		byIface(tx, func(c *topLinkCounters, v uint64) { c.TxBytes = v })
		return out
	}
	if s.Status == nil {
		return out
	}
	for _, is := range s.Status.Interfaces {
		l, err := netlink.LinkByName(is.Name)
		if err != nil || l.Attrs().Statistics == nil {
			continue
		}
		st := l.Attrs().Statistics
		out[is.Name] = topLinkCounters{RxBytes: st.RxBytes, TxBytes: st.TxBytes}
	}
	return out
}

// scrapeMetrics fetches and parses a Prometheus text exposition.
func scrapeMetrics(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: %s", url, resp.Status)
	}
	return parseMetricsText(resp.Body)
}

// parseMetricsText parses the Prometheus text format.
func parseMetricsText(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: parse: %w", err)
	}
	return mfs, nil
}

// topTUI is the bubbletea model of `onetdp top`.
type topTUI struct {
	o         topOptions
	prev, cur *topSample
	sort      flowSort
	paused    bool
}

type topTickMsg time.Time
type topSampleMsg *topSample

func newTopTUI(o topOptions) *topTUI { return &topTUI{o: o} }

func (m *topTUI) poll() tea.Cmd {
	return func() tea.Msg { return topSampleMsg(pollTop(context.Background(), m.o)) }
}

func (m *topTUI) tick() tea.Cmd {
	return tea.Tick(m.o.Interval, func(t time.Time) tea.Msg { return topTickMsg(t) })
}

// Init implements tea.Model.
func (m *topTUI) Init() tea.Cmd { return m.poll() }

// Update implements tea.Model.
func (m *topTUI) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		case "p", " ":
			m.paused = !m.paused
		case "s":
			m.sort = (m.sort + 1) % numFlowSorts
		}
	case topTickMsg:
		return m, m.poll()
	case topSampleMsg:
		if !m.paused {
			m.prev, m.cur = m.cur, msg
		}
		return m, m.tick()
	}
	return m, nil
}

// View implements tea.Model.
func (m *topTUI) View() string {
	if m.cur == nil {
		return "onetdp top: polling " + m.o.Socket + " ...\n"
	}
	v := computeTopView(m.prev, m.cur, m.sort, m.o.Flows)
	v.Paused = m.paused
	return renderTop(v)
}
