package cm

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ln, opts)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestServerManyConcurrent: n clients and n Accept calls at once; every pair
// sees each other's endpoint and nothing else.
func TestServerManyConcurrent(t *testing.T) {
	const n = 64
	s := newTestServer(t, Options{Timeout: 10 * time.Second})
	addr := s.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var mu sync.Mutex
	serverSaw := map[uint32]uint32{} // server-side QPN -> client QPN it received
	clientSaw := map[uint32]uint32{} // client QPN -> server-side QPN it received
	var wg sync.WaitGroup
	for i := range uint32(n) {
		wg.Add(2)
		go func() {
			defer wg.Done()
			local := endpointN(1000 + i)
			remote, err := s.Accept(ctx, local)
			if err != nil {
				t.Errorf("accept %d: %v", i, err)
				return
			}
			if remote != endpointN(remote.QPN-0x100) {
				t.Errorf("accept %d: endpoint fields mixed up: %+v", i, remote)
			}
			mu.Lock()
			serverSaw[local.QPN] = remote.QPN
			mu.Unlock()
		}()
		go func() {
			defer wg.Done()
			local := endpointN(i)
			remote, err := Dial(ctx, addr, local, Options{Timeout: 10 * time.Second})
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			mu.Lock()
			clientSaw[local.QPN] = remote.QPN
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(serverSaw) != n || len(clientSaw) != n {
		t.Fatalf("%d server and %d client exchanges finished, want %d each", len(serverSaw), len(clientSaw), n)
	}
	for cq, sq := range clientSaw {
		if serverSaw[sq] != cq {
			t.Errorf("client qpn %#x got server qpn %#x, which got client qpn %#x", cq, sq, serverSaw[sq])
		}
	}
}

func TestServerAcceptContextAndClose(t *testing.T) {
	s := newTestServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Accept(ctx, endpointN(1)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("accept with nobody dialling: err %v, want ErrTimeout", err)
	}

	ch := make(chan error, 1)
	go func() {
		_, err := s.Accept(context.Background(), endpointN(1))
		ch <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-ch:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("blocked accept: err %v, want ErrServerClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not wake a blocked Accept")
	}
	if _, err := s.Accept(context.Background(), endpointN(1)); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("accept after close: err %v, want ErrServerClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// TestServerBadPeerDoesNotStopOthers: a client speaking garbage fails its own
// Accept only; the next exchange on the same server works.
func TestServerBadPeerDoesNotStopOthers(t *testing.T) {
	s := newTestServer(t, Options{Timeout: 2 * time.Second})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Accept(context.Background(), endpointN(1)); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("garbage peer: err %v, want ErrBadMagic", err)
	}
	ch := make(chan result, 1)
	go func() {
		e, err := Dial(context.Background(), s.Addr().String(), endpointN(2), Options{Timeout: 2 * time.Second})
		ch <- result{e, err}
	}()
	got, err := s.Accept(context.Background(), endpointN(1))
	if err != nil || got != endpointN(2) {
		t.Fatalf("good peer after bad: %+v, %v", got, err)
	}
	if r := <-ch; r.err != nil || r.e != endpointN(1) {
		t.Fatalf("dial: %+v, %v", r.e, r.err)
	}
}
