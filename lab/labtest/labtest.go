package labtest

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/opennetworks/onetdp/internal/testutil"
	"github.com/opennetworks/onetdp/lab"
)

// New builds a lab described by opts for tb and registers lab.Down in
// tb.Cleanup. It skips the test without root. When opts.Name is empty it uses
// a unique name ("t" and 6 hex digits); when opts.Subnet is unset, a random
// /24 inside 198.18.0.0/15. It fails the test (t.Fatal) when Up fails.
func New(tb testing.TB, opts lab.Options) *lab.Lab {
	tb.Helper()
	testutil.RequireRoot(tb)
	if opts.Name == "" {
		opts.Name = testutil.UniqueName("t")
	}
	if !opts.Subnet.IsValid() {
		opts.Subnet = RandomSubnet()
	}
	tb.Cleanup(func() {
		if err := lab.Down(opts.Name); err != nil {
			tb.Errorf("lab down %s: %v", opts.Name, err)
		}
	})
	l, err := lab.Up(opts)
	if err != nil {
		tb.Fatalf("lab up %s: %v", opts.Name, err)
	}
	return l
}

// RandomSubnet returns a random /24 inside 198.18.0.0/15.
func RandomSubnet() netip.Prefix {
	n := rand.IntN(512)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, byte(18 + n/256), byte(n % 256), 0}), 24)
}
