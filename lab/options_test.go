package lab

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/opennetworks/onetdp/internal/testutil"
)

func TestValidateOptions(t *testing.T) {
	bad := map[string]Options{
		"name upper":      {Name: "Lab"},
		"name underscore": {Name: "a_b"},
		"name dash":       {Name: "-a"},
		"name long":       {Name: strings.Repeat("a", 25)},
		"one host":        {Hosts: 1},
		"too many hosts":  {Hosts: 251},
		"mtu low":         {MTU: 67},
		"mtu high":        {MTU: 9001},
		"subnet outside":  {Subnet: netip.MustParsePrefix("10.0.0.0/24")},
		"subnet wider":    {Subnet: netip.MustParsePrefix("198.16.0.0/14")},
		"subnet v6":       {Subnet: netip.MustParsePrefix("fd00:198:18::/64")},
		"subnet tiny":     {Subnet: netip.MustParsePrefix("198.18.0.0/31")},
		"subnet full":     {Hosts: 3, Subnet: netip.MustParsePrefix("198.18.0.0/30")},
		"queues":          {RxQueues: 65},
		"bn host":         {Bottleneck: &Bottleneck{Host: 2, RateBps: 1e9}},
		"bn rate":         {Bottleneck: &Bottleneck{Host: 0}},
		"bn burst":        {MTU: 9000, Bottleneck: &Bottleneck{Host: 0, RateBps: 1e9, BurstBytes: 9000}},
		"bn limit":        {Bottleneck: &Bottleneck{Host: 0, RateBps: 1e9, BurstBytes: 1 << 20, LimitBytes: 1 << 10}},
		"bn slow":         {Bottleneck: &Bottleneck{Host: 0, RateBps: 1000}},
	}
	for name, o := range bad {
		if err := o.withDefaults().validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: validate = %v, want ErrInvalidOptions", name, err)
		}
		if o.Name == "" {
			// Should validation ever let it through, build a lab of our
			// own (and remove it), never the default "onet".
			o.Name = testutil.UniqueName("t")
			t.Cleanup(func() { Down(o.Name) })
		}
		if _, err := Up(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: Up = %v, want ErrInvalidOptions", name, err)
		}
	}
	good := []Options{
		{},
		{Name: "a", Hosts: 250, MTU: 9000, Subnet: netip.MustParsePrefix("198.19.255.0/24"), IPv6: true},
		{Hosts: 2, Subnet: netip.MustParsePrefix("198.18.7.4/30")},
		{Bottleneck: &Bottleneck{Host: 1, RateBps: 1e6}},
	}
	for _, o := range good {
		if err := o.withDefaults().validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	o := Options{Subnet: netip.MustParsePrefix("198.18.3.77/24"), Bottleneck: &Bottleneck{RateBps: 8e6}}.withDefaults()
	if o.Name != "onet" || o.Hosts != 2 || o.MTU != 1500 || o.RxQueues != 1 || o.Subnet.String() != "198.18.3.0/24" {
		t.Errorf("defaults %+v", o)
	}
	if b := o.Bottleneck; b.BurstBytes != 64<<10 || b.LimitBytes != 1e6/20+64<<10 {
		t.Errorf("bottleneck defaults %+v", *b)
	}
	if w := (Options{MTU: 4000}).Warnings(); len(w) != 1 || !strings.Contains(w[0], "3506") {
		t.Errorf("warnings for mtu 4000: %q", w)
	}
	if w := (Options{MTU: 3506}).Warnings(); len(w) != 0 {
		t.Errorf("warnings for mtu 3506: %q", w)
	}
}

func TestPlanAddresses(t *testing.T) {
	l := plan(Options{Name: "x", Hosts: 3, IPv6: true, Subnet: netip.MustParsePrefix("198.19.2.0/23")}.withDefaults())
	want := []struct{ v4, v6, ns string }{
		{"198.19.2.1/23", "fd00:198:18:102::1/64", "/run/netns/x-h0"},
		{"198.19.2.2/23", "fd00:198:18:102::2/64", "/run/netns/x-h1"},
		{"198.19.2.3/23", "fd00:198:18:102::3/64", "/run/netns/x-h2"},
	}
	for i, w := range want {
		h := l.Hosts[i]
		if h.Addr.String() != w.v4 || h.Addr6.String() != w.v6 || h.Netns != w.ns || h.Ifname != "eth0" {
			t.Errorf("host %d: %s %s %s %s, want %s %s %s eth0", i, h.Addr, h.Addr6, h.Netns, h.Ifname, w.v4, w.v6, w.ns)
		}
		if h.MAC[0] != 0x02 || h.MAC[5] != byte(i) {
			t.Errorf("host %d mac %s: want locally administered unicast ending in %d", i, h.MAC, i)
		}
	}
	if !l.Switched {
		t.Error("3 hosts not switched")
	}
	if l4 := plan(Options{}.withDefaults()); l4.Hosts[0].Addr6.IsValid() {
		t.Errorf("IPv6 off but host has %s", l4.Hosts[0].Addr6)
	}
}

func TestParseEntry(t *testing.T) {
	cases := []struct {
		in   string
		lab  string
		host int
		ok   bool
	}{
		{"onet-h0", "onet", 0, true},
		{"onet-h12", "onet", 12, true},
		{"onet-sw", "onet", -1, true},
		{"a-h1-h0", "a-h1", 0, true},
		{"a-h1", "a", 1, true},
		{"onet-h", "", 0, false},
		{"onet-h01", "", 0, false},
		{"onet-h+1", "", 0, false},
		{"onet-h1000", "", 0, false},
		{"-h0", "", 0, false},
		{"Foo-h0", "", 0, false},
		{"random", "", 0, false},
		{"-sw", "", -1, false},
	}
	for _, c := range cases {
		l, h, ok := parseEntry(c.in)
		if ok != c.ok || ok && (l != c.lab || h != c.host) {
			t.Errorf("parseEntry(%q) = %q %d %v, want %q %d %v", c.in, l, h, ok, c.lab, c.host, c.ok)
		}
	}
}
