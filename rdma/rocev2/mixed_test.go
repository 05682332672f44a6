package rocev2_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/dataplane/porttest"
	"github.com/opennetworks/onetdp/rdma"
)

// mixedTraffic runs a random mix of WRITE, READ, SEND/RECV and atomics from
// a to b totalling about total bytes, and checks every byte and every
// completion. It returns the number of requests.
func mixedTraffic(t *testing.T, a, b *side, total int, maxSize int, seed uint64) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	half := len(a.buf) / 2
	// a's buffer: [0, half) source data, [half, end) READ destination.
	for i := range a.buf[:half] {
		a.buf[i] = byte(rng.Uint32())
	}
	moved, reqs := 0, 0
	var counter uint64
	binary.LittleEndian.PutUint64(b.buf[len(b.buf)-8:], 0)
	for moved < total {
		size := 1 + int(rng.Int64N(int64(maxSize)))
		if rng.IntN(4) == 0 {
			size = 1 + rng.IntN(2048)
		}
		size = min(size, half-16, len(b.buf)-16)
		off := rng.IntN(half - size)
		roff := rng.IntN(len(b.buf) - 16 - size)
		id := uint64(reqs + 1)
		switch op := rng.IntN(10); {
		case op < 4: // WRITE, then READ back and compare
			post(t, a.qp, rdma.SendWR{ID: id, Opcode: rdma.WRRDMAWrite, SGL: sge(a, off, size), RemoteAddr: b.mr.Addr() + uint64(roff), RKey: b.mr.RKey()},
				rdma.SendWR{ID: id + 1_000_000, Opcode: rdma.WRRDMARead, SGL: sge(a, half, size), RemoteAddr: b.mr.Addr() + uint64(roff), RKey: b.mr.RKey(), Signaled: true})
			wc := waitWC(t, a.scq, 1, 30*time.Second)[0]
			if wc.Status != rdma.WCSuccess || wc.ID != id+1_000_000 || wc.ByteLen != uint32(size) {
				t.Fatalf("request %d (write+read %d B): %+v", reqs, size, wc)
			}
			if crc32.ChecksumIEEE(a.buf[half:half+size]) != crc32.ChecksumIEEE(a.buf[off:off+size]) || !bytes.Equal(b.buf[roff:roff+size], a.buf[off:off+size]) {
				t.Fatalf("request %d: %d bytes written and read back differ", reqs, size)
			}
			moved += 2 * size
		case op < 8: // SEND/RECV
			postRecv(t, b.qp, rdma.RecvWR{ID: id, SGL: sge(b, roff, size)})
			post(t, a.qp, rdma.SendWR{ID: id, Opcode: rdma.WRSend, SGL: sge(a, off, size), Signaled: true})
			sw := waitWC(t, a.scq, 1, 30*time.Second)[0]
			rw := waitWC(t, b.rcq, 1, 30*time.Second)[0]
			if sw.Status != rdma.WCSuccess || rw.Status != rdma.WCSuccess || rw.ByteLen != uint32(size) || rw.ID != id {
				t.Fatalf("request %d (send %d B): send %+v recv %+v", reqs, size, sw, rw)
			}
			if !bytes.Equal(b.buf[roff:roff+size], a.buf[off:off+size]) {
				t.Fatalf("request %d: %d bytes sent differ", reqs, size)
			}
			moved += size
		default: // FETCH_AND_ADD on a counter at the end of b's buffer
			add := rng.Uint64() % 1000
			post(t, a.qp, rdma.SendWR{ID: id, Opcode: rdma.WRAtomicFetchAndAdd, SGL: sge(a, half, 8), RemoteAddr: b.mr.Addr() + uint64(len(b.buf)-8), RKey: b.mr.RKey(), CompareAdd: add, Signaled: true})
			wc := waitWC(t, a.scq, 1, 30*time.Second)[0]
			if wc.Status != rdma.WCSuccess || binary.LittleEndian.Uint64(a.buf[half:]) != counter {
				t.Fatalf("request %d: fetch-add %+v returned %d, want %d", reqs, wc, binary.LittleEndian.Uint64(a.buf[half:]), counter)
			}
			counter += add
			moved += 8
		}
		reqs++
	}
	if got := binary.LittleEndian.Uint64(b.buf[len(b.buf)-8:]); got != counter {
		t.Fatalf("atomic counter = %d, want %d (an atomic ran twice or not at all)", got, counter)
	}
	return reqs
}

func TestMixedTrafficUnderLoss(t *testing.T) {
	for _, lossPPM := range []uint32{0, 10_000, 50_000} {
		t.Run(fmt.Sprintf("loss%dppm", lossPPM), func(t *testing.T) {
			o, total := pairOptions{bufSize: 4 << 20}, 64<<20
			if raceEnabled {
				o.timeout, total = 16, 8<<20
			}
			_, a, b := fakePair(t, porttest.NetworkOptions{LossPPM: lossPPM, Seed: 42}, o)
			reqs := mixedTraffic(t, a, b, total, 1<<20, uint64(lossPPM)+1)
			st := a.dev.Stats()
			t.Logf("%d requests; retransmits %d, timeouts %d, seq NAKs %d, duplicates at b %d", reqs, st.Retransmits.Load(), st.Timeouts.Load(), st.SeqNAKsRcvd.Load(), b.dev.Stats().DuplicateRequests.Load())
			if lossPPM > 0 && st.Retransmits.Load() == 0 {
				t.Fatal("no retransmissions under loss")
			}
		})
	}
}
