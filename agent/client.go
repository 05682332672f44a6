package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrRemote wraps an error answered by the agent (Response.Error).
var ErrRemote = errors.New("agent")

// Client talks to an agent's control socket. One request at a time: it is
// owned by one goroutine.
type Client struct {
	conn net.Conn
	rd   *bufio.Reader
}

// Dial connects to the control socket at path.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to agent at %s: %w", path, err)
	}
	return &Client{conn: c, rd: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Raw sends one request line (a newline is added) and returns the
// response as received.
func (c *Client) Raw(line []byte) (Response, error) {
	var resp Response
	_ = c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.conn.Write(append(append([]byte(nil), line...), '\n')); err != nil {
		return resp, fmt.Errorf("send request: %w", err)
	}
	b, err := c.rd.ReadBytes('\n')
	if err != nil {
		return resp, fmt.Errorf("read response: %w", err)
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return resp, fmt.Errorf("decode response: %w", err)
	}
	return resp, nil
}

// Do sends req and decodes a successful result into out (may be nil).
// An error answer is returned as an error wrapping ErrRemote.
func (c *Client) Do(req Request, out any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	resp, err := c.Raw(b)
	if err != nil {
		return err
	}
	if resp.Error != "" {
		return fmt.Errorf("%w: %s (%s)", ErrRemote, resp.Error, resp.Code)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, out); err != nil {
		return fmt.Errorf("decode %s result: %w", req.Op, err)
	}
	return nil
}

// Status asks for the agent's status.
func (c *Client) Status() (Status, error) {
	var s Status
	return s, c.Do(Request{Op: "status"}, &s)
}

// Flows asks for the limit largest flows.
func (c *Client) Flows(limit int) ([]Flow, error) {
	var f []Flow
	return f, c.Do(Request{Op: "flows", Limit: limit}, &f)
}

// SetFault sets the drop probability of class on iface ("" = all).
func (c *Client) SetFault(iface, class string, ppm int64) (FaultResult, error) {
	var r FaultResult
	return r, c.Do(Request{Op: "fault", Iface: iface, Class: class, PPM: &ppm}, &r)
}

// Flowctl reads the ECN marker's parameters and the DCQCN presets, after
// applying set (nil: read only) on iface ("" = every interface).
func (c *Client) Flowctl(iface string, set *FlowctlSet) (FlowctlResult, error) {
	var r FlowctlResult
	return r, c.Do(Request{Op: "flowctl", Iface: iface, Set: set}, &r)
}

// Topology asks for links and addresses.
func (c *Client) Topology() (Topology, error) {
	var t Topology
	return t, c.Do(Request{Op: "topology"}, &t)
}

// Unpin asks the agent to remove its pins when it exits.
func (c *Client) Unpin() error { return c.Do(Request{Op: "unpin"}, nil) }
