package stack

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/dataplane"
)

// CommOptionKeys are the keys ParseCommOptions accepts, in onet.h's order.
var CommOptionKeys = []string{"transport", "addr", "port_transport", "shm", "busy_poll", "timeout_ms",
	"connect_timeout_ms", "algo", "prefix", "store"}

// ParseCommOptions parses the option string of onet_comm_create,
// "key=value;key=value" (see CommOptionKeys), into CommOptions with Rank
// and Size -1 (from the environment). Empty fields are skipped; an unknown
// key, a repeated key or a bad value is an error naming it, wrapping
// collective.ErrInvalidArgument.
func ParseCommOptions(s string) (CommOptions, error) {
	o := CommOptions{Rank: -1, Size: -1}
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ";") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return CommOptions{}, fmt.Errorf("comm options: %q: want key=value: %w", f, collective.ErrInvalidArgument)
		}
		if seen[k] {
			return CommOptions{}, fmt.Errorf("comm options: key %q given twice: %w", k, collective.ErrInvalidArgument)
		}
		seen[k] = true
		if err := setCommOption(&o, k, v); err != nil {
			return CommOptions{}, fmt.Errorf("comm options: %w", err)
		}
	}
	return o, nil
}

func setCommOption(o *CommOptions, k, v string) error {
	bad := func(want string) error {
		return fmt.Errorf("%s=%q: want %s: %w", k, v, want, collective.ErrInvalidArgument)
	}
	switch k {
	case "transport":
		o.Transport = TransportKind(v)
		if !validKind(o.Transport) {
			return bad("tcp, rocev2 or adaptive")
		}
	case "addr":
		a, err := netip.ParseAddr(v)
		if err != nil {
			return bad("an IP address")
		}
		o.Addr = a
	case "port_transport":
		switch dataplane.Transport(v) {
		case dataplane.TransportAuto, dataplane.TransportAFXDP, dataplane.TransportUDP:
			o.PortTransport = dataplane.Transport(v)
		default:
			return bad("auto, af_xdp or udp")
		}
	case "shm", "busy_poll":
		var on bool
		switch v {
		case "0", "false":
		case "1", "true":
			on = true
		default:
			return bad("0 or 1")
		}
		if k == "shm" {
			o.SharedMemory = on
		} else {
			o.NoBusyPoll = !on
		}
	case "timeout_ms", "connect_timeout_ms":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n > int64(365*24*time.Hour/time.Millisecond) {
			return bad("a positive number of milliseconds")
		}
		if k == "timeout_ms" {
			o.Timeout = time.Duration(n) * time.Millisecond
		} else {
			o.ConnectTimeout = time.Duration(n) * time.Millisecond
		}
	case "algo":
		m, err := collective.ParseAlgorithms(strings.ReplaceAll(v, " ", ""))
		if err != nil {
			return fmt.Errorf("algo=%q: %w", v, err)
		}
		o.Algorithm = m
	case "prefix":
		if v == "" {
			return bad("a non-empty store key prefix")
		}
		o.Prefix = v
	case "store":
		if !strings.HasPrefix(v, "tcp://") && !strings.HasPrefix(v, "file://") {
			return bad("tcp://host:port or file:///dir")
		}
		o.StoreURL = v
	default:
		return fmt.Errorf("unknown key %q (valid: %s): %w", k, strings.Join(CommOptionKeys, ", "), collective.ErrInvalidArgument)
	}
	return nil
}
