package rocev2_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma"
	"github.com/opennetworks/onetdp/rdma/rocev2"
)

// manyQPs connects nqp QP pairs between two engines on an in-memory network.
func manyQPs(t testing.TB, nqp int, o pairOptions) (as, bs []*side) {
	t.Helper()
	o.defaults()
	n := porttest.NewNetwork(porttest.NetworkOptions{MTU: 4200, QueueLen: 1 << 16})
	var devs [2]*rocev2.Device
	for i, ip := range []string{"198.18.0.1", "198.18.0.2"} {
		port, err := n.NewPort(netip.AddrPortFrom(netip.MustParseAddr(ip), rocev2.UDPPort))
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = openDevice(t, port, o.engine)
	}
	for i := 0; i < nqp; i++ {
		a, b := newSide(t, devs[0], o, uint32(i*1000)), newSide(t, devs[1], o, uint32(i*1000+500))
		connect(t, a, b, o)
		as, bs = append(as, a), append(bs, b)
	}
	return as, bs
}

// TestTenThousandOutstanding posts 10,000 RDMA WRITEs over 40 QPs before
// any can complete, and checks that every one completes and lands.
func TestTenThousandOutstanding(t *testing.T) {
	const nqp, perQP, size = 40, 250, 4096
	as, bs := manyQPs(t, nqp, pairOptions{bufSize: perQP * size, depth: perQP})
	for i, a := range as {
		fill(a.buf, byte(i))
		wrs := make([]rdma.SendWR, perQP)
		for k := range wrs {
			wrs[k] = rdma.SendWR{ID: uint64(k), Opcode: rdma.WRRDMAWrite, SGL: sge(a, k*size, size),
				RemoteAddr: bs[i].mr.Addr() + uint64(k*size), RKey: bs[i].mr.RKey(), Signaled: true}
		}
		post(t, a.qp, wrs...)
	}
	for i, a := range as {
		wcs := waitWC(t, a.scq, perQP, 60*time.Second)
		for k, wc := range wcs {
			if wc.Status != rdma.WCSuccess || wc.ID != uint64(k) {
				t.Fatalf("QP %d completion %d: %+v (completions must come in order)", i, k, wc)
			}
		}
		if !bytes.Equal(bs[i].buf, a.buf) {
			t.Fatalf("QP %d: written bytes differ", i)
		}
	}
}

// BenchmarkWriteQPs measures WRITE goodput with the same total outstanding
// work spread over 1 to 64 QPs: throughput must not fall as QPs grow.
func BenchmarkWriteQPs(b *testing.B) {
	for _, nqp := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("qps=%d", nqp), func(b *testing.B) {
			const size, depth = 16384, 64
			as, bs := manyQPs(b, nqp, pairOptions{bufSize: depth * size, depth: depth * 2})
			wrs := make([][]rdma.SendWR, nqp)
			for i, a := range as {
				for k := 0; k < depth; k++ {
					wrs[i] = append(wrs[i], rdma.SendWR{ID: uint64(k), Opcode: rdma.WRRDMAWrite, SGL: sge(a, k*size, size),
						RemoteAddr: bs[i].mr.Addr() + uint64(k*size), RKey: bs[i].mr.RKey(), Signaled: k == depth-1})
				}
			}
			b.SetBytes(int64(size * depth * nqp))
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				for i, a := range as {
					post(b, a.qp, wrs[i]...)
				}
				for _, a := range as {
					waitWC(b, a.scq, 1, time.Minute)
				}
			}
		})
	}
}
