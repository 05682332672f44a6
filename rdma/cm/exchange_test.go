package cm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

func endpointN(n uint32) Endpoint {
	return Endpoint{
		GID:        GIDFromAddr(netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)})),
		QPN:        0x100 + n,
		PSN:        (0x3e8a6b * (n + 1)) & MaxPSN,
		MTU:        1024,
		Addr:       0x7f00_0000_0000 + uint64(n)<<20,
		RKey:       0x1000 + n,
		Len:        4096,
		UDPSrcPort: 0xc000 + uint16(n),
	}
}

type result struct {
	e   Endpoint
	err error
}

// exchangeBoth runs Exchange on both ends at once.
func exchangeBoth(t *testing.T, a, b Endpoint, oa, ob Options) (ra, rb result) {
	t.Helper()
	ca, cb := tcpPair(t)
	ch := make(chan result, 1)
	go func() {
		e, err := ExchangeWith(context.Background(), cb, b, ob)
		ch <- result{e, err}
	}()
	e, err := ExchangeWith(context.Background(), ca, a, oa)
	return result{e, err}, <-ch
}

func TestExchangeRoundTrip(t *testing.T) {
	a, b := sampleEndpoint(), endpointN(7)
	b.MTU = 2048
	ra, rb := exchangeBoth(t, a, b, Options{}, Options{})
	if ra.err != nil || rb.err != nil {
		t.Fatalf("errors: %v / %v", ra.err, rb.err)
	}
	if ra.e != b {
		t.Errorf("side a got %+v, want %+v", ra.e, b)
	}
	if rb.e != a {
		t.Errorf("side b got %+v, want %+v", rb.e, a)
	}
}

// TestExchangeReadyMeansRTR: when either side returns, both OnRemote hooks
// (where callers move their QP to RTR) have run.
func TestExchangeReadyMeansRTR(t *testing.T) {
	var rtr atomic.Int32
	hook := func(remote Endpoint) error {
		time.Sleep(50 * time.Millisecond) // a slow modify_qp must still be waited for
		rtr.Add(1)
		return nil
	}
	ca, cb := tcpPair(t)
	ch := make(chan int32, 2)
	run := func(c net.Conn, e Endpoint) {
		_, err := ExchangeWith(context.Background(), c, e, Options{OnRemote: hook})
		if err != nil {
			t.Error(err)
		}
		ch <- rtr.Load()
	}
	go run(ca, endpointN(1))
	go run(cb, endpointN(2))
	for range 2 {
		if n := <-ch; n != 2 {
			t.Errorf("returned after %d of 2 sides reached RTR", n)
		}
	}
}

func TestExchangeRejectedByPeerHook(t *testing.T) {
	boom := errors.New("modify qp to rtr: invalid argument")
	ra, rb := exchangeBoth(t, endpointN(1), endpointN(2),
		Options{}, Options{OnRemote: func(Endpoint) error { return boom }})
	if !errors.Is(ra.err, ErrRejected) {
		t.Errorf("accepted side: err %v, want ErrRejected", ra.err)
	}
	if !errors.Is(rb.err, boom) {
		t.Errorf("rejecting side: err %v, want the hook's error", rb.err)
	}
}

func TestExchangeInvalidLocalDoesNoIO(t *testing.T) {
	// Nobody reads the other end of a pipe, so any write would block until
	// the timeout: getting ErrInvalidEndpoint proves nothing was written.
	c, peer := net.Pipe()
	defer c.Close()
	defer peer.Close()
	bad := endpointN(1)
	bad.MTU = 1500
	_, err := Exchange(context.Background(), c, bad, time.Second)
	if !errors.Is(err, ErrInvalidEndpoint) {
		t.Fatalf("err %v, want ErrInvalidEndpoint", err)
	}
}

// rawPeer runs script on the far end of a loopback connection while the near
// end runs Exchange with timeout, and returns how long Exchange took, every
// byte the peer received, and Exchange's error.
func rawPeer(t *testing.T, timeout time.Duration, script func(c net.Conn)) (took time.Duration, got []byte, err error) {
	t.Helper()
	ca, cb := tcpPair(t)
	received := make(chan []byte, 1)
	go func() {
		script(cb)
		_ = cb.SetReadDeadline(time.Now().Add(2 * time.Second))
		rest, _ := io.ReadAll(cb)
		received <- rest
		cb.Close()
	}()
	start := time.Now()
	_, err = Exchange(context.Background(), ca, endpointN(1), timeout)
	took = time.Since(start)
	ca.Close()
	return took, <-received, err
}

func readMsg(c net.Conn) []byte {
	b := make([]byte, MessageSize)
	_, _ = io.ReadFull(c, b)
	return b
}

func TestExchangePeerErrors(t *testing.T) {
	peerMsg := AppendEndpoint(nil, endpointN(2))
	ourMsg := AppendEndpoint(nil, endpointN(1))
	mod := func(f func(b []byte)) []byte { b := bytes.Clone(peerMsg); f(b); return b }
	cases := []struct {
		name     string
		script   func(c net.Conn)
		want     error
		peerGets []byte // what the peer reads after our message, when checked
	}{
		{"closes at once", func(c net.Conn) { c.Close() }, ErrPeerClosed, nil},
		{"closes mid message", func(c net.Conn) { c.Write(peerMsg[:30]); c.(*net.TCPConn).CloseWrite() }, ErrPeerClosed, nil},
		{"closes after header", func(c net.Conn) { c.Write(peerMsg[:HeaderSize]); c.(*net.TCPConn).CloseWrite() }, ErrPeerClosed, nil},
		{"closes before ready", func(c net.Conn) { c.Write(peerMsg); readMsg(c); c.(*net.TCPConn).CloseWrite() }, ErrPeerClosed, nil},
		{"bad magic", func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n")) }, ErrBadMagic, nil},
		{"version 2, longer message", func(c net.Conn) {
			// A future version with another size: we must answer from
			// the header alone, not wait for 60 bytes.
			c.Write([]byte("ONETCM\x02\x00"))
		}, ErrVersion, nil},
		{"crc damaged", func(c net.Conn) { c.Write(mod(func(b []byte) { b[9] ^= 1 })) }, ErrCorrupt, []byte{RejectByte}},
		{"invalid mtu", func(c net.Conn) {
			c.Write(reCRC(mod(func(b []byte) { b[32], b[33] = 0x05, 0xdc })))
		}, ErrInvalidEndpoint, []byte{RejectByte}},
		{"rejects us", func(c net.Conn) { c.Write(peerMsg); readMsg(c); c.Write([]byte{RejectByte}) }, ErrRejected, []byte{ReadyByte}},
		{"garbage ready byte", func(c net.Conn) { c.Write(peerMsg); readMsg(c); c.Write([]byte{'?'}) }, ErrCorrupt, []byte{ReadyByte}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			took, got, err := rawPeer(t, 3*time.Second, tc.script)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if took > time.Second {
				t.Errorf("took %v: the error must not wait for the timeout", took)
			}
			if tc.peerGets != nil {
				// The script read our message already when it answered
				// with ready or reject; otherwise it is still in got.
				want := tc.peerGets
				if len(got) >= MessageSize && bytes.Equal(got[:MessageSize], ourMsg) {
					want = append(bytes.Clone(ourMsg), tc.peerGets...)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("peer received % x, want % x", got, want)
				}
			}
		})
	}
}

func TestExchangeSilentPeerTimesOut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script func(c net.Conn)
	}{
		// Each peer stays silent until we hang up (io.Copy returns then).
		{"never writes", func(c net.Conn) { io.Copy(io.Discard, c) }},
		{"stalls mid message", func(c net.Conn) { c.Write(AppendEndpoint(nil, endpointN(2))[:20]); io.Copy(io.Discard, c) }},
		{"never sends ready", func(c net.Conn) { c.Write(AppendEndpoint(nil, endpointN(2))); io.Copy(io.Discard, c) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			took, _, err := rawPeer(t, 200*time.Millisecond, tc.script)
			if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err %v, want ErrTimeout wrapping context.DeadlineExceeded", err)
			}
			if took < 200*time.Millisecond || took > 2*time.Second {
				t.Errorf("took %v, want about the 200ms timeout", took)
			}
		})
	}
}

func TestExchangeContext(t *testing.T) {
	ca, _ := tcpPair(t)
	// A context deadline shorter than Timeout wins.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Exchange(ctx, ca, endpointN(1), 10*time.Second)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("context deadline: err %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("context deadline: took %v", took)
	}

	// Cancellation interrupts a blocked read at once.
	cb, _ := tcpPair(t)
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	start = time.Now()
	_, err = Exchange(ctx2, cb, endpointN(1), 10*time.Second)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("cancel: err %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("cancel: took %v", took)
	}

	// An already cancelled context does no I/O.
	_, err = Exchange(ctx2, cb, endpointN(1), 10*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: err %v", err)
	}
}

// TestExchangeLeavesConnUsable: deadlines are cleared, so the caller can keep
// using the connection (perftest reuses it for results) past the timeout.
func TestExchangeLeavesConnUsable(t *testing.T) {
	ca, cb := tcpPair(t)
	ch := make(chan error, 1)
	go func() {
		_, err := Exchange(context.Background(), cb, endpointN(2), 100*time.Millisecond)
		if err == nil {
			time.Sleep(250 * time.Millisecond)
			_, err = cb.Write([]byte("done"))
		}
		ch <- err
	}()
	if _, err := Exchange(context.Background(), ca, endpointN(1), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(ca, buf); err != nil || string(buf) != "done" {
		t.Fatalf("read after exchange: %q, %v", buf, err)
	}
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback address nothing listens on (it was free a
// moment ago).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestListenDial(t *testing.T) {
	addrCh := make(chan string, 1)
	ch := make(chan result, 1)
	srv, cli := endpointN(1), endpointN(2)
	go func() {
		e, err := Listen(context.Background(), "127.0.0.1:0", srv, Options{
			Timeout:   5 * time.Second,
			Listening: func(a net.Addr) { addrCh <- a.String() },
		})
		ch <- result{e, err}
	}()
	addr := <-addrCh
	got, err := Dial(context.Background(), addr, cli, Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen: %v", r.err)
	}
	if got != srv || r.e != cli {
		t.Errorf("dial got %+v want %+v; listen got %+v want %+v", got, srv, r.e, cli)
	}
	// Listen served one connection and closed its listener.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("listener still accepting after the exchange")
	}
}

func TestDialRetriesUntilListen(t *testing.T) {
	addr := freePort(t)
	const delay = 400 * time.Millisecond
	ch := make(chan result, 1)
	go func() {
		time.Sleep(delay)
		e, err := Listen(context.Background(), addr, endpointN(1), Options{Timeout: 5 * time.Second})
		ch <- result{e, err}
	}()
	start := time.Now()
	got, err := Dial(context.Background(), addr, endpointN(2), Options{Timeout: 5 * time.Second, Retry: 20 * time.Millisecond})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if got != endpointN(1) {
		t.Errorf("dial got %+v", got)
	}
	if took < delay {
		t.Errorf("dial returned after %v, before the server started at %v", took, delay)
	}
	if r := <-ch; r.err != nil || r.e != endpointN(2) {
		t.Errorf("listen: %+v, %v", r.e, r.err)
	}
}

func TestDialTimesOutWithoutListener(t *testing.T) {
	addr := freePort(t)
	start := time.Now()
	_, err := Dial(context.Background(), addr, endpointN(2), Options{Timeout: 300 * time.Millisecond, Retry: 50 * time.Millisecond})
	took := time.Since(start)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v, want ErrTimeout wrapping the refused dial", err)
	}
	if took < 200*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("took %v, want about 300ms", took)
	}
}

func TestDialFailsFastOnBadAddress(t *testing.T) {
	start := time.Now()
	_, err := Dial(context.Background(), "127.0.0.1", endpointN(2), Options{Timeout: 5 * time.Second})
	var ae *net.AddrError
	if !errors.As(err, &ae) {
		t.Fatalf("err %v, want a *net.AddrError (missing port)", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v: a malformed address must not be retried", took)
	}
}

func TestListenTimesOutWithoutPeer(t *testing.T) {
	start := time.Now()
	_, err := Listen(context.Background(), "127.0.0.1:0", endpointN(1), Options{Timeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = Listen(ctx, "127.0.0.1:0", endpointN(1), Options{Timeout: 10 * time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: err %v, want context.Canceled", err)
	}
}

func TestListenDialInvalidLocal(t *testing.T) {
	bad := endpointN(1)
	bad.QPN = 1 << 24
	for name, f := range map[string]func() error{
		"listen": func() error { _, err := Listen(context.Background(), "127.0.0.1:0", bad, Options{}); return err },
		"dial":   func() error { _, err := Dial(context.Background(), freePort(t), bad, Options{}); return err },
	} {
		if err := f(); !errors.Is(err, ErrInvalidEndpoint) {
			t.Errorf("%s: err %v, want ErrInvalidEndpoint", name, err)
		}
	}
}

func ExampleEndpoint_PerftestString() {
	e := Endpoint{GID: GIDFromAddr(netip.MustParseAddr("198.18.0.1")), QPN: 0x11, PSN: 0x3e8a6b, MTU: 1024, RKey: 0x13c, Addr: 0x7f2a1c000000, Len: 4096}
	fmt.Print(e.PerftestString())
	// Output:
	//  local address: LID 0000 QPN 0x0011 PSN 0x3e8a6b RKey 0x00013c VAddr 0x007f2a1c000000
	//  GID: 00:00:00:00:00:00:00:00:00:00:255:255:198:18:00:01
}
