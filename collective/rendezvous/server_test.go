package rendezvous

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestDialAbsentServerTimesOut(t *testing.T) {
	addr := freeAddr(t)
	start := time.Now()
	_, err := DialTCPStore(context.Background(), addr, TCPStoreOptions{DialTimeout: 150 * time.Millisecond})
	if !errors.Is(err, collective.ErrTimeout) {
		t.Fatalf("dial %s with no server: %v, want ErrTimeout", addr, err)
	}
	if el := time.Since(start); el < 150*time.Millisecond || el > 3*time.Second {
		t.Fatalf("dial gave up after %v, want about 150ms", el)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := DialTCPStore(ctx, addr, TCPStoreOptions{}); !errors.Is(err, collective.ErrTimeout) {
		t.Fatalf("dial bounded by ctx: %v, want ErrTimeout", err)
	}
	if _, err := DialTCPStore(ctx, "no-port", TCPStoreOptions{}); !errors.Is(err, collective.ErrInvalidArgument) {
		t.Fatalf("dial malformed address: %v, want ErrInvalidArgument", err)
	}
}

// TestDialBeforeServer: clients started before rank 0 serves connect once
// it does.
func TestDialBeforeServer(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		s, err := DialTCPStore(ctx, addr, TCPStoreOptions{})
		if err == nil {
			var v []byte
			v, err = s.Get(ctx, "k")
			if err == nil && string(v) != "v" {
				err = errors.New("wrong value " + string(v))
			}
			s.Close()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	srv, err := ServeTCPStore(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := DialTCPStore(ctx, addr, TCPStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// TestServerRestart: calls in flight when the server dies fail with
// ErrPeerLost, calls while it is down time out, and the client reconnects
// once it is back.
func TestServerRestart(t *testing.T) {
	ctx := context.Background()
	srv, err := ServeTCPStore(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	c, err := DialTCPStore(ctx, addr, TCPStoreOptions{DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "before", []byte("1")); err != nil {
		t.Fatal(err)
	}
	pending := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, "never")
		pending <- err
	}()
	time.Sleep(30 * time.Millisecond)
	srv.Close()
	if err := <-pending; !errors.Is(err, collective.ErrPeerLost) {
		t.Fatalf("get in flight when the server closed: %v, want ErrPeerLost", err)
	}
	if err := c.Set(ctx, "down", nil); !errors.Is(err, collective.ErrTimeout) {
		t.Fatalf("set while the server is down: %v, want ErrTimeout", err)
	}
	srv2, err := ServeTCPStore(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	if ok, err := c.Check(ctx, "before"); err != nil || ok {
		t.Fatalf("check before on the new server = %v, %v; want false (state died with the old one)", ok, err)
	}
	if err := c.Set(ctx, "after", []byte("2")); err != nil {
		t.Fatalf("set after restart: %v", err)
	}
	if ok, err := c.Check(ctx, "after"); err != nil || !ok {
		t.Fatalf("check after = %v, %v", ok, err)
	}
}

// TestServerStopTellsWhy: a server stopped with a cause tells its
// clients: a Get waiting there fails with the cause's collective error and
// text, and so do later calls, at once (no dialing again).
func TestServerStopTellsWhy(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		cause error
		want  error
	}{
		{fmt.Errorf("read rank 4's address: %w", collective.ErrTimeout), collective.ErrTimeout},
		{fmt.Errorf("user said stop: %w", collective.ErrAborted), collective.ErrAborted},
		{errors.New("disk on fire"), collective.ErrPeerLost},
	} {
		srv, err := ServeTCPStore(ctx, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		st, err := DialTCPStore(ctx, srv.Addr().String(), TCPStoreOptions{DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		pending := make(chan error, 1)
		go func() {
			_, err := st.Get(ctx, "tcp/rank/4")
			pending <- err
		}()
		waitWaiters(t, srv, "tcp/rank/4", 1)
		if err := srv.Stop(c.cause); err != nil {
			t.Fatal(err)
		}
		err = <-pending
		var stop *ServerStoppedError
		if !errors.Is(err, c.want) || !errors.As(err, &stop) || stop.Reason != c.cause.Error() {
			t.Errorf("%v: waiting get: %v, want %v carrying the cause", c.cause, err, c.want)
		}
		start := time.Now()
		if err := st.Set(ctx, "later", nil); !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.cause.Error()) {
			t.Errorf("%v: later set: %v, want %v", c.cause, err, c.want)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%v: later set took %v: it dialed again", c.cause, took)
		}
		st.Close()
	}
}

// waitWaiters waits until key has n Gets waiting on srv.
func waitWaiters(t *testing.T, srv *TCPServer, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		srv.mu.Lock()
		got := len(srv.waiters[key])
		srv.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d gets waiting on %q, want %d", got, key, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCancelledGetIsForgotten: a Get whose ctx ended leaves no waiter
// behind on the server.
func TestCancelledGetIsForgotten(t *testing.T) {
	srv, err := ServeTCPStore(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := DialTCPStore(context.Background(), srv.Addr().String(), TCPStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
		_, err := c.Get(ctx, "w")
		cancel()
		if !errors.Is(err, collective.ErrTimeout) {
			t.Fatal(err)
		}
	}
	waitWaiters(t, srv, "w", 0) // the cancels reach the server
}

// TestServerSurvivesMalformedClients sends garbage on raw connections; each
// gets an error response or a closed connection, and a well-behaved client
// keeps working throughout.
func TestServerSurvivesMalformedClients(t *testing.T) {
	srv, err := ServeTCPStore(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	good, err := DialTCPStore(context.Background(), srv.Addr().String(), TCPStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	ctx := context.Background()
	huge := binary.BigEndian.AppendUint32(nil, 1<<31)
	cases := map[string][]byte{
		"huge length":    huge,
		"short body":     {0, 0, 0, 2, 1, 2},
		"unknown op":     appendRequest(nil, request{op: 99, id: 7, key: []byte("k")}),
		"key past end":   {0, 0, 0, 8, opSet, 0, 0, 0, 1, 0xff, 0xff, 'k'},
		"add of 3 bytes": appendRequest(nil, request{op: opAdd, id: 1, key: []byte("k"), value: []byte{1, 2, 3}}),
		"empty key":      appendRequest(nil, request{op: opGet, id: 1}),
		"truncated":      appendRequest(nil, request{op: opSet, id: 1, key: []byte("k"), value: []byte("value")})[:10],
	}
	for name, msg := range cases {
		nc, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(msg); err != nil {
			t.Fatalf("%s: write: %v", name, err)
		}
		if name == "truncated" {
			nc.Close() // the server sees EOF mid-frame
		} else {
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			reply, err := io.ReadAll(nc)
			if err != nil {
				t.Fatalf("%s: read: %v", name, err)
			}
			if len(reply) < frameHeaderLen+respHeaderLen || reply[frameHeaderLen] != statusError {
				t.Fatalf("%s: reply %x, want an error response then EOF", name, reply)
			}
			if !bytes.Contains(reply, []byte("protocol error")) {
				t.Fatalf("%s: reply %q does not say protocol error", name, reply[frameHeaderLen+respHeaderLen:])
			}
			nc.Close()
		}
		if err := good.Set(ctx, "alive", []byte(name)); err != nil {
			t.Fatalf("after %s: good client: %v", name, err)
		}
	}
	if v, err := good.Get(ctx, "alive"); err != nil || string(v) != "truncated" && len(v) == 0 {
		t.Fatalf("get alive = %q, %v", v, err)
	}
}

// TestClientRejectsMalformedServer: a server that answers garbage makes the
// call fail with ErrProtocol inside ErrPeerLost, not hang or panic.
func TestClientRejectsMalformedServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		var h [4]byte
		io.ReadFull(nc, h[:])
		nc.Write([]byte{0, 0, 0, 5, 9, 0, 0, 0, 1}) // status 9
		io.Copy(io.Discard, nc)
	}()
	c, err := DialTCPStore(context.Background(), ln.Addr().String(), TCPStoreOptions{DialTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Get(ctx, "x")
	if !errors.Is(err, collective.ErrPeerLost) || !errors.Is(err, ErrProtocol) {
		t.Fatalf("get from a garbage server: %v, want ErrPeerLost and ErrProtocol", err)
	}
}
