package rendezvous

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// DefaultDialTimeout bounds DialTCPStore's retries when
// TCPStoreOptions.DialTimeout is zero (torch's default store timeout).
const DefaultDialTimeout = 300 * time.Second

// TCPStoreOptions tune a TCP store client. The zero value is usable.
type TCPStoreOptions struct {
	// DialTimeout bounds the retries while the server is not up yet, on
	// top of the caller's context. Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// Dial opens the connection; nil uses net.Dialer on the calling
	// goroutine. Set it to dial from somewhere else (another netns).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// TCPStore is a client of a TCPServer, implementing collective.Store. One
// connection carries all calls, any number of them concurrently; when the
// connection breaks, the calls on it fail with collective.ErrPeerLost and
// the next call dials again. When the server stopped and said why
// (TCPServer.Stop), calls fail with a *ServerStoppedError from then on.
// Safe for concurrent use.
type TCPStore struct {
	addr string
	opts TCPStoreOptions

	// closing ends dials in progress when Close is called.
	closing context.Context
	cancel  context.CancelFunc

	mu     sync.Mutex // guards conn, nextID, closed; held while dialing
	conn   *clientConn
	nextID uint32
	closed bool
}

var _ collective.Store = (*TCPStore)(nil)

type clientConn struct {
	nc   net.Conn
	done chan struct{} // closed when the connection broke

	wmu  sync.Mutex
	wbuf []byte

	pmu     sync.Mutex
	pending map[uint32]chan response
	err     error // why it broke, set before done closes
}

// DialTCPStore connects to the TCP store at addr ("host:port"), retrying
// with backoff while nothing answers there yet, until ctx ends or
// opts.DialTimeout passes (the error then wraps collective.ErrTimeout and
// the last dial error).
func DialTCPStore(ctx context.Context, addr string, opts TCPStoreOptions) (*TCPStore, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("tcp store: dial %q: %w: %w", addr, collective.ErrInvalidArgument, err)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.Dial == nil {
		opts.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	s := &TCPStore{addr: addr, opts: opts}
	s.closing, s.cancel = context.WithCancel(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.connectLocked(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	return s, nil
}

// Addr is the server address the store dials.
func (s *TCPStore) Addr() string { return s.addr }

// connectLocked returns the live connection, dialing one if needed. s.mu
// is held.
func (s *TCPStore) connectLocked(ctx context.Context) (*clientConn, error) {
	if s.closed {
		return nil, collective.ErrClosed
	}
	if c := s.conn; c != nil {
		select {
		case <-c.done:
			var stop *ServerStoppedError
			if errors.As(c.broken(), &stop) {
				return nil, fmt.Errorf("%s: %w", s.addr, stop)
			}
		default:
			return c, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()
	var lastErr error
	backoff := 10 * time.Millisecond
	for {
		nc, err := s.opts.Dial(ctx, s.addr)
		if err == nil {
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			c := &clientConn{nc: nc, done: make(chan struct{}), pending: map[uint32]chan response{}}
			go c.readLoop()
			s.conn = c
			return c, nil
		}
		lastErr = err
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if s.closing.Err() != nil {
				return nil, fmt.Errorf("tcp store: dial %s: %w", s.addr, collective.ErrClosed)
			}
			return nil, fmt.Errorf("tcp store: dial %s: no server within %v: %w: %w", s.addr, s.opts.DialTimeout, collective.ErrTimeout, lastErr)
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (c *clientConn) readLoop() {
	var buf []byte
	var err error
	for {
		var body []byte
		body, err = readFrame(c.nc, buf, respHeaderLen+MaxValueLen)
		buf = body
		if err != nil {
			break
		}
		var r response
		if r, err = parseResponse(body); err != nil {
			break
		}
		if r.status == statusStopped {
			err = stoppedError(r.value)
			break
		}
		c.pmu.Lock()
		ch, ok := c.pending[r.id]
		delete(c.pending, r.id)
		c.pmu.Unlock()
		if ok {
			r.value = append([]byte(nil), r.value...)
			ch <- r // buffered: never blocks
		}
	}
	c.fail(err)
}

// fail marks the connection broken; pending calls see done close.
func (c *clientConn) fail(err error) {
	c.pmu.Lock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
	c.pmu.Unlock()
	_ = c.nc.Close()
}

func (c *clientConn) broken() error {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	return c.err
}

// call sends req and waits for its response.
func (s *TCPStore) call(ctx context.Context, what string, req request) (response, error) {
	if len(req.key) == 0 || len(req.key) > MaxKeyLen {
		return response{}, fmt.Errorf("tcp store: %s %q: key of %d bytes, want 1..%d: %w", what, req.key, len(req.key), MaxKeyLen, collective.ErrInvalidArgument)
	}
	if len(req.value) > MaxValueLen {
		return response{}, fmt.Errorf("tcp store: %s %q: value of %d bytes exceeds %d: %w", what, req.key, len(req.value), MaxValueLen, collective.ErrInvalidArgument)
	}
	s.mu.Lock()
	c, err := s.connectLocked(ctx)
	if err != nil {
		s.mu.Unlock()
		return response{}, fmt.Errorf("tcp store: %s %q: %w", what, req.key, err)
	}
	s.nextID++
	req.id = s.nextID
	s.mu.Unlock()

	ch := make(chan response, 1)
	c.pmu.Lock()
	if c.err != nil {
		c.pmu.Unlock()
		return response{}, s.lost(what, req.key, c.err)
	}
	c.pending[req.id] = ch
	c.pmu.Unlock()

	c.wmu.Lock()
	c.wbuf = appendRequest(c.wbuf[:0], req)
	_, err = c.nc.Write(c.wbuf)
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil
	}
	c.wmu.Unlock()
	if err != nil {
		c.fail(err)
	}

	select {
	case r := <-ch:
		return r, nil
	case <-c.done:
		select { // the response may have raced the break
		case r := <-ch:
			return r, nil
		default:
		}
		return response{}, s.lost(what, req.key, c.broken())
	case <-ctx.Done():
		c.pmu.Lock()
		delete(c.pending, req.id)
		c.pmu.Unlock()
		if req.op == opGet {
			c.wmu.Lock()
			c.wbuf = appendRequest(c.wbuf[:0], request{op: opCancel, id: req.id})
			if _, err := c.nc.Write(c.wbuf); err != nil {
				c.fail(err)
			}
			c.wmu.Unlock()
		}
		return response{}, fmt.Errorf("tcp store: %s %q: %w: %w", what, req.key, collective.ErrTimeout, ctx.Err())
	}
}

func (s *TCPStore) lost(what string, key []byte, cause error) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("tcp store: %s %q: %w", what, key, collective.ErrClosed)
	}
	var stop *ServerStoppedError
	if errors.As(cause, &stop) {
		return fmt.Errorf("tcp store: %s %q: %s: %w", what, key, s.addr, cause)
	}
	return fmt.Errorf("tcp store: %s %q: connection to %s lost: %w: %w", what, key, s.addr, collective.ErrPeerLost, cause)
}

// ServerStoppedError: the store's server stopped (TCPServer.Stop) and said
// why. It wraps collective.ErrTimeout or ErrAborted when that is why its
// owner stopped it, else collective.ErrPeerLost. A store whose server
// stopped does not dial again: its calls fail with this error.
type ServerStoppedError struct {
	// Reason is the server's text: its owner's error.
	Reason string
	class  error
}

func (e *ServerStoppedError) Error() string {
	return fmt.Sprintf("the server stopped (%s): %v", e.Reason, e.class)
}

func (e *ServerStoppedError) Unwrap() error { return e.class }

// stoppedError reads a statusStopped value (parseResponse checked it).
func stoppedError(v []byte) *ServerStoppedError {
	e := &ServerStoppedError{Reason: string(v[1:]), class: collective.ErrPeerLost}
	switch v[0] {
	case stopTimeout:
		e.class = collective.ErrTimeout
	case stopAborted:
		e.class = collective.ErrAborted
	}
	return e
}

func serverError(what string, key []byte, r response) error {
	return fmt.Errorf("tcp store: %s %q: server says: %s: %w", what, key, r.value, collective.ErrInvalidArgument)
}

// Set implements collective.Store.
func (s *TCPStore) Set(ctx context.Context, key string, value []byte) error {
	r, err := s.call(ctx, "set", request{op: opSet, key: []byte(key), value: value})
	if err != nil {
		return err
	}
	if r.status != statusOK {
		return serverError("set", []byte(key), r)
	}
	return nil
}

// Get implements collective.Store: it waits on the server until some
// client sets key or ctx ends.
func (s *TCPStore) Get(ctx context.Context, key string) ([]byte, error) {
	r, err := s.call(ctx, "get", request{op: opGet, key: []byte(key)})
	if err != nil {
		return nil, err
	}
	if r.status != statusOK {
		return nil, serverError("get", []byte(key), r)
	}
	return r.value, nil
}

// Add implements collective.Store.
func (s *TCPStore) Add(ctx context.Context, key string, delta int64) (int64, error) {
	r, err := s.call(ctx, "add", request{op: opAdd, key: []byte(key), value: binary.BigEndian.AppendUint64(nil, uint64(delta))})
	if err != nil {
		return 0, err
	}
	if r.status != statusOK {
		return 0, serverError("add", []byte(key), r)
	}
	if len(r.value) != 8 {
		return 0, fmt.Errorf("tcp store: add %q: result of %d bytes, want 8: %w", key, len(r.value), ErrProtocol)
	}
	return int64(binary.BigEndian.Uint64(r.value)), nil
}

// Check reports whether key is set, without waiting.
func (s *TCPStore) Check(ctx context.Context, key string) (bool, error) {
	r, err := s.call(ctx, "check", request{op: opCheck, key: []byte(key)})
	if err != nil {
		return false, err
	}
	switch r.status {
	case statusOK:
		return true, nil
	case statusNotFound:
		return false, nil
	}
	return false, serverError("check", []byte(key), r)
}

// Close implements collective.Store: it closes the connection; calls in
// flight and later fail with collective.ErrClosed.
func (s *TCPStore) Close() error {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.conn != nil {
		s.conn.fail(errors.New("closed"))
	}
	return nil
}
