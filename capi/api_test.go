package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/opennetworks/onetdp/collective"
)

func TestBuffer(t *testing.T) {
	b := make([]byte, 64)
	p := unsafe.Pointer(&b[0])
	got, err := buffer("op", "recv", p, 4, 2, collective.Float64)
	if err != nil || len(got) != 64 || &got[0] != &b[0] {
		t.Errorf("4 x 2 float64: %d bytes, %v", len(got), err)
	}
	if got, err := buffer("op", "recv", nil, 0, 3, collective.Float32); err != nil || len(got) != 0 {
		t.Errorf("NULL with 0 elements: %v %v", got, err)
	}
	if _, err := buffer("op", "recv", nil, 1, 1, collective.Int8); !errors.Is(err, collective.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "op: recv is NULL with 1 bytes") {
		t.Errorf("NULL with 1 element: %v", err)
	}
	if _, err := buffer("op", "send", p, math.MaxUint64/4, 1, collective.Float64); !errors.Is(err, collective.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "overflows") {
		t.Errorf("overflow: %v", err)
	}
	if _, err := buffer("op", "send", p, math.MaxInt64/8, 3, collective.Float64); !errors.Is(err, collective.ErrInvalidArgument) {
		t.Errorf("overflow with blocks: %v", err)
	}
	if _, err := dtypeOf("op", 8); err == nil || !strings.Contains(err.Error(), "dtype 8") {
		t.Errorf("dtype 8: %v", err)
	}
	if _, err := dtypeOf("op", -1); err == nil {
		t.Error("dtype -1 accepted")
	}
	if _, err := opOf("op", 5); err == nil || !strings.Contains(err.Error(), "op 5") {
		t.Errorf("op 5: %v", err)
	}
	for i, name := range []string{"float", "double", "half", "bfloat16", "int8", "uint8", "int32", "int64"} {
		if d, err := dtypeOf("op", int32(i)); err != nil || d.String() != name {
			t.Errorf("onet_dtype %d is %v, want %s (the header's order)", i, d, name)
		}
	}
	for i, name := range []string{"sum", "prod", "min", "max", "avg"} {
		if o, err := opOf("op", int32(i)); err != nil || o.String() != name {
			t.Errorf("onet_op %d is %v, want %s", i, o, name)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func f32(b []byte, i int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])) }

func put32(b []byte, i int, v float32) { binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v)) }

// TestAPIInProcess drives the Go side of the ABI with two ranks in this
// process over tcp on loopback: create, blocking and non-blocking
// operations, wait with a timeout, stats, unknown handles, destroy.
func TestAPIInProcess(t *testing.T) {
	port := freePort(t)
	ids := make([]uint64, 2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for r := range 2 {
		wg.Go(func() { ids[r], errs[r] = commCreate(r, 2, "127.0.0.1", port, "transport=tcp;timeout_ms=20000") })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if ids[0] == 0 || ids[1] == 0 || ids[0] == ids[1] {
		t.Fatalf("handles %v", ids)
	}
	each := func(fn func(r int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for r := range 2 {
			wg.Go(func() { errs[r] = fn(r) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	// Blocking allreduce, in place through send == NULL.
	bufs := [2][]byte{make([]byte, 4*10), make([]byte, 4*10)}
	each(func(r int) error {
		for i := range 10 {
			put32(bufs[r], i, float32(r+1+i))
		}
		return allreduce(ids[r], nil, unsafe.Pointer(&bufs[r][0]), 10, 0, 0, nil)
	})
	for r := range 2 {
		for i := range 10 {
			if got := f32(bufs[r], i); got != float32(3+2*i) {
				t.Fatalf("rank %d allreduce [%d] = %v", r, i, got)
			}
		}
	}
	// Non-blocking allgather, then a wait that times out on a receive
	// nobody sent yet, then the send.
	gather := [2][]byte{make([]byte, 16), make([]byte, 16)}
	var reqs [2]uint64
	each(func(r int) error {
		own := []byte{byte(r), byte(r), byte(r), byte(r), 9, 9, 9, 9}
		if err := allgather(ids[r], unsafe.Pointer(&own[0]), unsafe.Pointer(&gather[r][0]), 2, 6, &reqs[r]); err != nil {
			return err
		}
		return waitRequest(reqs[r], -1)
	})
	for r := range 2 {
		if want := []byte{0, 0, 0, 0, 9, 9, 9, 9, 1, 1, 1, 1, 9, 9, 9, 9}; string(gather[r]) != string(want) {
			t.Errorf("rank %d allgather %v", r, gather[r])
		}
	}
	if err := waitRequest(reqs[0], 0); !errors.Is(err, collective.ErrInvalidArgument) {
		t.Errorf("wait on a completed request: %v", err)
	}
	in, out := make([]byte, 8), []byte{1, 2, 3, 4, 5, 6, 7, 8}
	var rq uint64
	if err := sendRecv(true, ids[1], unsafe.Pointer(&in[0]), 1, 7, 0, 5, &rq); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := waitRequest(rq, 30*time.Millisecond)
	if statusOf(err) != statusTimeout || !errors.Is(err, errWaitTimeout) || time.Since(start) > 2*time.Second {
		t.Errorf("wait for an unsent message: %v after %v", err, time.Since(start))
	}
	if done, err := testRequest(rq); done || err != nil {
		t.Errorf("test before the send: %v %v", done, err)
	}
	if err := sendRecv(false, ids[0], unsafe.Pointer(&out[0]), 1, 7, 1, 5, nil); err != nil {
		t.Fatal(err)
	}
	if err := waitRequest(rq, 10*time.Second); err != nil || string(in) != string(out) {
		t.Errorf("recv after the send: %v, %v", err, in)
	}
	// Stats.
	s, err := commStats(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	var doc statsJSON
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	if ar := doc.Ops["allreduce"]; doc.Rank != 0 || doc.Size != 2 || doc.Transport != "tcp" || ar.Completed != 1 || ar.Bytes != 40 ||
		len(ar.Buckets) != 1 || ar.Buckets[0].Count != 1 || doc.Ops["allgather"].Completed != 1 {
		t.Errorf("stats %s", s)
	}
	// Argument errors never reach the peers.
	if err := allreduce(ids[0], nil, unsafe.Pointer(&bufs[0][0]), 10, 0, 9, nil); statusOf(err) != statusInvalid {
		t.Errorf("bad op: %v", err)
	}
	if err := broadcast(ids[0], unsafe.Pointer(&bufs[0][0]), 1, 0, 2, nil); statusOf(err) != statusInvalid {
		t.Errorf("bad root: %v", err)
	}
	if err := barrier(12345, nil); statusOf(err) != statusInvalid || !strings.Contains(err.Error(), "onet_barrier: communicator 12345: unknown handle") {
		t.Errorf("unknown comm: %v", err)
	}
	// Abort on rank 0 fails rank 1's pending barrier with ABORTED.
	var breq uint64
	if err := barrier(ids[1], &breq); err != nil {
		t.Fatal(err)
	}
	if err := commAbort(ids[0], "test"); err != nil {
		t.Fatal(err)
	}
	if err := waitRequest(breq, 10000*time.Millisecond); statusOf(err) != statusAborted {
		t.Errorf("barrier pending at abort: %v (%v)", err, statusOf(err))
	}
	each(func(r int) error { return commDestroy(ids[r]) })
	if err := commDestroy(ids[0]); statusOf(err) != statusInvalid {
		t.Errorf("destroy twice: %v", err)
	}
	if n := comms.len(); n != 0 {
		t.Errorf("%d communicators left", n)
	}
}
