package lab

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
)

// Defaults applied by Options when a field is left zero.
const (
	DefaultName   = "onet"
	DefaultHosts  = 2
	DefaultMTU    = 1500
	MinMTU        = 68
	MaxMTU        = 9000
	MaxNativeXDP  = 3506 // largest veth MTU at which native XDP attaches without frags support
	MaxHosts      = 250
	maxNameLength = 24
	hostIfname    = "eth0"
	bridgeName    = "br0"
	txQueueLen    = 1000
)

// DefaultSubnet is the IPv4 block used when Options.Subnet is not set.
var DefaultSubnet = netip.MustParsePrefix("198.18.0.0/24")

// benchmarkBlock is the only IPv4 space a lab may use (RFC 2544 benchmarking).
var benchmarkBlock = netip.MustParsePrefix("198.18.0.0/15")

// Sentinel errors callers can act on.
var (
	// ErrNotFound: no namespace of that lab exists.
	ErrNotFound = errors.New("lab not found")
	// ErrIncomplete: some namespaces of the lab exist but it is not whole
	// (a crash during Up, or someone deleted a piece); Up repairs it.
	ErrIncomplete = errors.New("lab incomplete")
	// ErrInvalidOptions: Options failed validation.
	ErrInvalidOptions = errors.New("invalid lab options")
	// ErrNoSuchHost: Lab.Host was asked for a host the lab does not have.
	ErrNoSuchHost = errors.New("no such host")
)

// Options describe a lab to build with Up. The zero value of every field
// means its default. Owned by the caller; Up only reads it.
type Options struct {
	// Name prefixes every namespace of the lab: "<Name>-h0".."<Name>-h<N-1>"
	// and "<Name>-sw". 1..24 characters of [a-z0-9-], not starting or
	// ending with '-'. Default "onet".
	Name string
	// Hosts is the number of hosts, 2..250 (default 2). Two hosts are joined
	// by one veth pair; three or more by a bridge in "<Name>-sw".
	Hosts int
	// MTU of every link, 68..9000 (default 1500). Native XDP on veth only
	// attaches up to 3506 without a frags-aware program; Warnings says so.
	MTU int
	// Subnet is the IPv4 block, inside 198.18.0.0/15 (default
	// 198.18.0.0/24). Host i gets the (i+1)-th address of it.
	Subnet netip.Prefix
	// IPv6 also gives host i fd00:198:18:<x>::(i+1)/64 (without DAD), where
	// x is derived from Subnet so that different subnets get different
	// IPv6 blocks.
	IPv6 bool
	// RxQueues is the rx and tx queue count of every veth (default 1).
	RxQueues int
	// Bottleneck, when set, rate limits the link into one host with TBF.
	Bottleneck *Bottleneck
}

// Bottleneck is a token bucket (TBF qdisc) on the link into Host: on the
// switch port toward it, or for two hosts on the peer's egress.
type Bottleneck struct {
	// Host is the index of the host whose ingress is limited.
	Host int
	// RateBps is the rate in bits per second (> 0).
	RateBps uint64
	// BurstBytes is the bucket size; 0 picks max(64 KiB, 1 ms at RateBps).
	// It must hold at least one frame (MTU + 14).
	BurstBytes uint32
	// LimitBytes is the queue length in bytes; 0 picks 50 ms at RateBps
	// plus the burst.
	LimitBytes uint32
}

// Warnings lists conditions that are allowed but limit what can run on the
// lab (for example an MTU too large for native XDP on veth).
func (o Options) Warnings() []string {
	var w []string
	if o.MTU > MaxNativeXDP {
		w = append(w, fmt.Sprintf("mtu %d > %d: native XDP on veth needs a frags-aware program (xdp.frags) at this MTU", o.MTU, MaxNativeXDP))
	}
	return w
}

// withDefaults returns o with zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Hosts == 0 {
		o.Hosts = DefaultHosts
	}
	if o.MTU == 0 {
		o.MTU = DefaultMTU
	}
	if !o.Subnet.IsValid() {
		o.Subnet = DefaultSubnet
	}
	o.Subnet = o.Subnet.Masked()
	if o.RxQueues == 0 {
		o.RxQueues = 1
	}
	if o.Bottleneck != nil {
		b := *o.Bottleneck
		if b.BurstBytes == 0 && b.RateBps > 0 {
			b.BurstBytes = uint32(max(64<<10, min(b.RateBps/8/1000, 1<<30)))
		}
		if b.LimitBytes == 0 && b.RateBps > 0 {
			b.LimitBytes = uint32(min(b.RateBps/8/20+uint64(b.BurstBytes), 1<<30))
		}
		o.Bottleneck = &b
	}
	return o
}

// ValidateName reports whether name can name a lab.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > maxNameLength {
		return fmt.Errorf("%w: name %q must be 1..%d characters", ErrInvalidOptions, name, maxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: name %q may only hold a-z, 0-9 and '-'", ErrInvalidOptions, name)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return fmt.Errorf("%w: name %q must not start or end with '-'", ErrInvalidOptions, name)
	}
	return nil
}

// validate checks o (after withDefaults).
func (o Options) validate() error {
	if err := ValidateName(o.Name); err != nil {
		return err
	}
	if o.Hosts < 2 || o.Hosts > MaxHosts {
		return fmt.Errorf("%w: hosts %d not in 2..%d", ErrInvalidOptions, o.Hosts, MaxHosts)
	}
	if o.MTU < MinMTU || o.MTU > MaxMTU {
		return fmt.Errorf("%w: mtu %d not in %d..%d", ErrInvalidOptions, o.MTU, MinMTU, MaxMTU)
	}
	if !o.Subnet.Addr().Is4() {
		return fmt.Errorf("%w: subnet %s is not IPv4", ErrInvalidOptions, o.Subnet)
	}
	if o.Subnet.Bits() < benchmarkBlock.Bits() || !benchmarkBlock.Contains(o.Subnet.Addr()) {
		return fmt.Errorf("%w: subnet %s is not inside %s", ErrInvalidOptions, o.Subnet, benchmarkBlock)
	}
	if o.Subnet.Bits() > 30 {
		return fmt.Errorf("%w: subnet %s is smaller than a /30", ErrInvalidOptions, o.Subnet)
	}
	if usable := (1 << (32 - o.Subnet.Bits())) - 2; o.Hosts > usable {
		return fmt.Errorf("%w: subnet %s holds %d hosts, asked for %d", ErrInvalidOptions, o.Subnet, usable, o.Hosts)
	}
	if o.RxQueues < 1 || o.RxQueues > 64 {
		return fmt.Errorf("%w: rx queues %d not in 1..64", ErrInvalidOptions, o.RxQueues)
	}
	if b := o.Bottleneck; b != nil {
		if b.Host < 0 || b.Host >= o.Hosts {
			return fmt.Errorf("%w: bottleneck host %d not in 0..%d", ErrInvalidOptions, b.Host, o.Hosts-1)
		}
		if b.RateBps < 8 {
			return fmt.Errorf("%w: bottleneck rate %d bit/s is too low", ErrInvalidOptions, b.RateBps)
		}
		if int(b.BurstBytes) < o.MTU+14 {
			return fmt.Errorf("%w: bottleneck burst %d bytes is smaller than one frame (%d)", ErrInvalidOptions, b.BurstBytes, o.MTU+14)
		}
		if uint64(b.BurstBytes)*8 > b.RateBps*100 {
			return fmt.Errorf("%w: bottleneck burst %d bytes takes over 100 s at %d bit/s", ErrInvalidOptions, b.BurstBytes, b.RateBps)
		}
		if b.LimitBytes < b.BurstBytes {
			return fmt.Errorf("%w: bottleneck limit %d bytes is smaller than the burst %d", ErrInvalidOptions, b.LimitBytes, b.BurstBytes)
		}
	}
	return nil
}

// HostNetns is the namespace name of host i of lab name.
func HostNetns(name string, i int) string { return name + "-h" + strconv.Itoa(i) }

// SwitchNetns is the namespace name of the switch of lab name.
func SwitchNetns(name string) string { return name + "-sw" }

func switchPort(i int) string { return "p" + strconv.Itoa(i) }

// hostMAC is a locally administered unicast MAC that depends only on the lab
// name and the host index, so that rebuilding a lab gives the same MACs.
func hostMAC(name string, i int) net.HardwareAddr {
	h := fnv.New32a()
	h.Write([]byte(name))
	s := h.Sum32()
	return net.HardwareAddr{0x02, byte(s >> 16), byte(s >> 8), byte(s), byte(i >> 8), byte(i)}
}

// hostAddr is the (i+1)-th address of subnet with its prefix length.
func hostAddr(subnet netip.Prefix, i int) netip.Prefix {
	b := subnet.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i + 1)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), subnet.Bits())
}

// hostAddr6 is fd00:198:18:<x>::(i+1)/64 where x holds the low 9 bits of the
// subnet's /24 inside 198.18.0.0/15.
func hostAddr6(subnet netip.Prefix, i int) netip.Prefix {
	b := subnet.Addr().As4()
	x := uint16(b[1]-18)<<8 | uint16(b[2])
	var a [16]byte
	a[0], a[1] = 0xfd, 0x00
	a[2], a[3] = 0x01, 0x98
	a[4], a[5] = 0x00, 0x18
	a[6], a[7] = byte(x>>8), byte(x)
	v := uint32(i + 1)
	a[12], a[13], a[14], a[15] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// plan is the lab that o describes (addresses, names, MACs; no ifindexes).
func plan(o Options) *Lab {
	l := &Lab{Name: o.Name, Switched: o.Hosts > 2, Hosts: make([]Host, o.Hosts)}
	for i := range l.Hosts {
		h := &l.Hosts[i]
		h.Name = "h" + strconv.Itoa(i)
		h.Netns = netnsPath(HostNetns(o.Name, i))
		h.Ifname = hostIfname
		h.MAC = hostMAC(o.Name, i)
		h.Addr = hostAddr(o.Subnet, i)
		if o.IPv6 {
			h.Addr6 = hostAddr6(o.Subnet, i)
		}
		h.MTU = o.MTU
		h.RxQueues = o.RxQueues
	}
	if o.Bottleneck != nil {
		b := *o.Bottleneck
		l.Bottleneck = &b
	}
	return l
}
