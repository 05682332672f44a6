package rendezvous

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

const (
	// maxPendingGets bounds the Gets one client connection may have
	// waiting on the server at once.
	maxPendingGets = 4096
	// serverWriteTimeout bounds one write to a client; a client that does
	// not read for this long is disconnected.
	serverWriteTimeout = 30 * time.Second
)

// TCPServer serves a TCP store: the key-value map lives in its memory and
// dies with it. Rank 0 runs one (Join does it) and is also a client. All
// methods are safe for concurrent use.
type TCPServer struct {
	ln net.Listener

	mu      sync.Mutex
	kv      map[string][]byte
	waiters map[string][]waiter
	conns   map[*serverConn]struct{}
	closed  bool

	wg sync.WaitGroup
}

type waiter struct {
	c  *serverConn
	id uint32
}

// serverConn is one client connection. pending (key of each waiting Get by
// request id) is guarded by TCPServer.mu; the write side by wmu.
type serverConn struct {
	nc      net.Conn
	pending map[uint32]string

	wmu  sync.Mutex
	wbuf []byte
}

// ServeTCPStore listens on addr ("host:port"; port 0 picks one, see Addr)
// and serves the store until Close. ctx bounds only the listen call. The
// listening socket is opened on the calling goroutine, so inside a lab
// Host.Do it lives in that host's namespace.
func ServeTCPStore(ctx context.Context, addr string) (*TCPServer, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp store: listen %s: %w", addr, err)
	}
	return ServeTCPStoreListener(ln), nil
}

// ServeTCPStoreListener serves the store on ln, which it owns from now on.
func ServeTCPStoreListener(ln net.Listener) *TCPServer {
	s := &TCPServer{
		ln:      ln,
		kv:      map[string][]byte{},
		waiters: map[string][]waiter{},
		conns:   map[*serverConn]struct{}{},
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s
}

// Addr is the address the server listens on.
func (s *TCPServer) Addr() net.Addr { return s.ln.Addr() }

// Close stops serving: it closes the listener and every client connection
// (their pending calls fail with collective.ErrPeerLost; a client dials
// again on its next call, see TCPStore) and waits for the server's
// goroutines to end.
func (s *TCPServer) Close() error { return s.Stop(nil) }

// Stop is Close with a reason (nil: Close). Before the connections close,
// every client is told why (cause's text): its calls, those waiting and
// later ones, fail with a *ServerStoppedError that wraps the collective
// error cause carries (collective.ErrTimeout, ErrAborted; any other as
// collective.ErrPeerLost), and it does not dial again. Rank 0 stops its
// server so when it gives up on a rendezvous, so that the ranks waiting
// on it learn that rank 0 timed out, and on what, rather than only that
// the connection broke.
func (s *TCPServer) Stop(cause error) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var notice response
	if cause != nil {
		notice = stopNotice(cause)
	}
	for _, c := range conns {
		if cause != nil {
			c.sendWithin(notice, stopNoticeTimeout)
		}
		_ = c.nc.Close()
	}
	s.wg.Wait()
	return err
}

// stopNoticeTimeout bounds the stop notice's write to one client.
const stopNoticeTimeout = time.Second

// stopNotice is the statusStopped frame for cause.
func stopNotice(cause error) response {
	class := stopFailed
	switch {
	case errors.Is(cause, collective.ErrTimeout):
		class = stopTimeout
	case errors.Is(cause, collective.ErrAborted):
		class = stopAborted
	}
	v := append([]byte{class}, cause.Error()...)
	return response{status: statusStopped, value: v[:min(len(v), MaxValueLen)]}
}

func (s *TCPServer) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: wait and go on rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := &serverConn{nc: nc, pending: map[uint32]string{}}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// serve reads c's requests until it breaks or sends a malformed one.
func (s *TCPServer) serve(c *serverConn) {
	defer s.wg.Done()
	defer s.drop(c)
	var buf []byte
	for {
		body, err := readFrame(c.nc, buf, maxBody)
		buf = body
		if err != nil {
			if errors.Is(err, ErrProtocol) {
				c.send(response{status: statusError, value: []byte(err.Error())})
			}
			return
		}
		req, err := parseRequest(body)
		if err != nil {
			id := uint32(0)
			if len(body) >= 5 {
				id = binary.BigEndian.Uint32(body[1:5])
			}
			c.send(response{status: statusError, id: id, value: []byte(err.Error())})
			return
		}
		s.handle(c, req)
	}
}

// drop forgets c and its waiting Gets.
func (s *TCPServer) drop(c *serverConn) {
	_ = c.nc.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	for id, key := range c.pending {
		s.removeWaiter(key, c, id)
	}
	clear(c.pending)
}

// removeWaiter removes one waiting Get; s.mu is held.
func (s *TCPServer) removeWaiter(key string, c *serverConn, id uint32) {
	ws := s.waiters[key]
	for i, w := range ws {
		if w.c == c && w.id == id {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.waiters, key)
	} else {
		s.waiters[key] = ws
	}
}

func (s *TCPServer) handle(c *serverConn, req request) {
	key := string(req.key)
	switch req.op {
	case opSet:
		s.mu.Lock()
		s.kv[key] = append([]byte(nil), req.value...)
		woken := s.wake(key)
		s.mu.Unlock()
		c.send(response{status: statusOK, id: req.id})
		notify(woken, req.value)
	case opAdd:
		delta := int64(binary.BigEndian.Uint64(req.value))
		s.mu.Lock()
		var n int64
		if v, ok := s.kv[key]; ok {
			var err error
			if n, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				s.mu.Unlock()
				c.send(response{status: statusError, id: req.id, value: fmt.Appendf(nil, "add to %q: value %q is not an integer", key, v)})
				return
			}
		}
		n += delta
		v := strconv.AppendInt(nil, n, 10)
		s.kv[key] = v
		woken := s.wake(key)
		s.mu.Unlock()
		c.send(response{status: statusOK, id: req.id, value: binary.BigEndian.AppendUint64(nil, uint64(n))})
		notify(woken, v)
	case opCheck:
		s.mu.Lock()
		_, ok := s.kv[key]
		s.mu.Unlock()
		st := statusNotFound
		if ok {
			st = statusOK
		}
		c.send(response{status: st, id: req.id})
	case opGet:
		s.mu.Lock()
		if v, ok := s.kv[key]; ok {
			s.mu.Unlock()
			c.send(response{status: statusOK, id: req.id, value: v}) // values are never mutated in place
			return
		}
		if _, dup := c.pending[req.id]; dup || len(c.pending) >= maxPendingGets {
			s.mu.Unlock()
			c.send(response{status: statusError, id: req.id, value: fmt.Appendf(nil, "get %q: request id %d in use or more than %d gets waiting", key, req.id, maxPendingGets)})
			return
		}
		c.pending[req.id] = key
		s.waiters[key] = append(s.waiters[key], waiter{c: c, id: req.id})
		s.mu.Unlock()
	case opCancel:
		s.mu.Lock()
		if k, ok := c.pending[req.id]; ok {
			delete(c.pending, req.id)
			s.removeWaiter(k, c, req.id)
		}
		s.mu.Unlock()
	}
}

// wake takes the waiters of key off the books; s.mu is held.
func (s *TCPServer) wake(key string) []waiter {
	ws := s.waiters[key]
	if len(ws) == 0 {
		return nil
	}
	delete(s.waiters, key)
	for _, w := range ws {
		delete(w.c.pending, w.id)
	}
	return ws
}

func notify(ws []waiter, v []byte) {
	for _, w := range ws {
		w.c.send(response{status: statusOK, id: w.id, value: v})
	}
}

// send writes one response; a failed write closes the connection, which
// ends its serve loop.
func (c *serverConn) send(r response) { c.sendWithin(r, serverWriteTimeout) }

func (c *serverConn) sendWithin(r response, timeout time.Duration) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = appendResponse(c.wbuf[:0], r)
	_ = c.nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write(c.wbuf); err != nil {
		_ = c.nc.Close()
	}
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil
	}
}
