package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/opennetworks/onetdp/bpf"
)

// Response is one control API answer: Result on success, Error and Code
// otherwise.
type Response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	Code   string          `json:"code,omitempty"`
}

// Flow is one entry of a flows answer.
type Flow struct {
	Iface       string  `json:"iface"`
	Class       string  `json:"class"`
	Src         string  `json:"src"`
	Dst         string  `json:"dst"`
	SrcPort     uint16  `json:"src_port"`
	DstPort     uint16  `json:"dst_port"`
	QP          uint32  `json:"qp,omitempty"`
	Packets     uint64  `json:"packets"`
	Bytes       uint64  `json:"bytes"`
	CE          uint64  `json:"ce"`
	AgeSeconds  float64 `json:"age_seconds"`
	IdleSeconds float64 `json:"idle_seconds"`
}

// FaultResult answers a fault request: the interfaces changed.
type FaultResult struct {
	Interfaces []string `json:"interfaces"`
	Class      string   `json:"class"`
	PPM        int64    `json:"ppm"`
}

// UnpinResult answers an unpin request.
type UnpinResult struct {
	UnpinOnExit bool `json:"unpin_on_exit"`
}

// connIdle closes a control connection that sends nothing for this long.
const connIdle = 5 * time.Minute

// startControl listens on the control socket. A socket file nobody answers
// on is a leftover and is replaced; one that answers means another agent.
func (a *Agent) startControl() error {
	path := a.opts.ControlSocket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("agent: control socket dir: %w", err)
	}
	if err := checkNotRunning(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agent: remove stale control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("agent: listen on control socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return fmt.Errorf("agent: control socket mode: %w", err)
	}
	a.ctrlLn = ln
	a.wg.Add(1)
	go a.acceptControl()
	return nil
}

// checkNotRunning fails with ErrAlreadyRunning when an agent answers on
// the control socket at path.
func checkNotRunning(path string) error {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("agent: control socket %s: %w", path, ErrAlreadyRunning)
	}
	return nil
}

func (a *Agent) acceptControl() {
	defer a.wg.Done()
	for {
		c, err := a.ctrlLn.Accept()
		if err != nil {
			return // closed
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.conns[c] = struct{}{}
		a.mu.Unlock()
		a.wg.Add(1)
		go a.serveConn(c)
	}
}

// serveConn answers newline-delimited requests until EOF, an idle timeout
// or a line longer than MaxRequestBytes (answered, then closed).
func (a *Agent) serveConn(c net.Conn) {
	defer a.wg.Done()
	defer func() {
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
		c.Close()
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), MaxRequestBytes+1)
	enc := json.NewEncoder(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(connIdle))
		if !sc.Scan() {
			if errors.Is(sc.Err(), bufio.ErrTooLong) {
				resp := a.fail(fmt.Errorf("%w: request line longer than %d bytes", ErrMalformed, MaxRequestBytes))
				_ = enc.Encode(resp)
			}
			return
		}
		line := sc.Bytes()
		if len(trimSpace(line)) == 0 {
			continue
		}
		if err := enc.Encode(a.Handle(line)); err != nil {
			return
		}
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Handle answers one request line, exactly as the control socket does.
// Errors are counted in onet_agent_control_errors_total.
func (a *Agent) Handle(line []byte) Response {
	req, err := DecodeRequest(line)
	if err != nil {
		return a.fail(err)
	}
	a.metrics.request(req.Op)
	var result any
	switch req.Op {
	case "status":
		result = a.Status()
	case "flows":
		result, err = a.Flows(req.Limit)
	case "fault":
		result, err = a.setFault(req)
	case "flowctl":
		result, err = a.Flowctl(req.Iface, req.Set)
	case "topology":
		result, err = a.Topology()
	case "unpin":
		a.RequestUnpin()
		result = UnpinResult{UnpinOnExit: true}
	}
	if err != nil {
		return a.fail(err)
	}
	b, err := json.Marshal(result)
	if err != nil {
		return a.fail(fmt.Errorf("encode %s result: %w", req.Op, err))
	}
	return Response{Result: b}
}

// fail builds an error response and counts it.
func (a *Agent) fail(err error) Response {
	code := errorCode(err)
	a.metrics.controlError(code)
	return Response{Error: err.Error(), Code: code}
}

// Flows returns the limit largest flows by bytes over every interface.
func (a *Agent) Flows(limit int) ([]Flow, error) {
	now := bpf.MonotonicNow()
	var out []Flow
	for _, ifc := range a.ifaces {
		err := ifc.disp.Flows(func(k bpf.FlowKey, s bpf.FlowStats) bool {
			out = append(out, Flow{
				Iface: ifc.name, Class: k.Class.String(),
				Src: k.Src.String(), Dst: k.Dst.String(), SrcPort: k.SrcPort, DstPort: k.DstPort, QP: k.QP,
				Packets: s.Packets, Bytes: s.Bytes, CE: s.CE,
				AgeSeconds: (now - s.FirstSeen).Seconds(), IdleSeconds: (now - s.LastSeen).Seconds(),
			})
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("flows of %s: %w", ifc.name, err)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Packets > out[j].Packets
	})
	if len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []Flow{}
	}
	return out, nil
}

// setFault applies a validated fault request.
func (a *Agent) setFault(req Request) (FaultResult, error) {
	c, err := parseClass(req.Class)
	if err != nil {
		return FaultResult{}, err
	}
	res := FaultResult{Class: req.Class, PPM: *req.PPM, Interfaces: []string{}}
	found := false
	for _, ifc := range a.ifaces {
		if req.Iface != "" && req.Iface != ifc.name {
			continue
		}
		found = true
		if err := ifc.disp.SetFault(c, uint32(*req.PPM)); err != nil {
			return res, fmt.Errorf("fault on %s: %w", ifc.name, err)
		}
		res.Interfaces = append(res.Interfaces, ifc.name)
	}
	if !found {
		return res, fmt.Errorf("%w: iface %q is not attached by this agent", ErrBadArgument, req.Iface)
	}
	return res, nil
}
