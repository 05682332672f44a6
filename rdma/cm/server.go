package cm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// Server runs one exchange per accepted connection on a listener it owns, for
// setups with many QPs or many peers: call Accept once per expected
// connection, from as many goroutines as you like. All methods are safe for
// concurrent use.
type Server struct {
	ln   net.Listener
	opts Options

	conns     chan net.Conn // handed from the accept loop to Accept
	done      chan struct{} // closed by Close
	loopDone  chan struct{} // closed when the accept loop has exited
	closeOnce sync.Once

	mu      sync.Mutex
	loopErr error // why the accept loop stopped; guarded by mu
}

// NewServer starts accepting on ln, which the Server now owns (Close closes
// it). opts.Timeout bounds each exchange, counted from the moment Accept
// takes the connection; opts.OnRemote runs for every exchange; Retry and
// Listening are not used.
func NewServer(ln net.Listener, opts Options) *Server {
	s := &Server{
		ln:       ln,
		opts:     opts,
		conns:    make(chan net.Conn),
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	go s.acceptLoop()
	return s
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Accept waits for the next connection (bounded only by ctx), exchanges
// endpoints on it with local as our side, closes it and returns the peer's
// endpoint. After Close, or when the listener fails, it returns an error
// wrapping ErrServerClosed.
func (s *Server) Accept(ctx context.Context, local Endpoint) (Endpoint, error) {
	if err := local.Validate(); err != nil {
		return Endpoint{}, fmt.Errorf("cm accept on %s: local endpoint: %w", s.Addr(), err)
	}
	var conn net.Conn
	select {
	case conn = <-s.conns:
	case <-ctx.Done():
		return Endpoint{}, fmt.Errorf("cm accept on %s: %w", s.Addr(), ctxError(ctx.Err()))
	case <-s.done:
		return Endpoint{}, fmt.Errorf("cm accept on %s: %w", s.Addr(), ErrServerClosed)
	case <-s.loopDone:
		s.mu.Lock()
		err := s.loopErr
		s.mu.Unlock()
		return Endpoint{}, fmt.Errorf("cm accept on %s: %w: %w", s.Addr(), ErrServerClosed, err)
	}
	defer conn.Close()
	remote, err := ExchangeWith(ctx, conn, local, s.opts)
	if err != nil {
		return Endpoint{}, fmt.Errorf("cm accept on %s: exchange with %s: %w", s.Addr(), conn.RemoteAddr(), err)
	}
	return remote, nil
}

// Close stops accepting and closes the listener. Connections accepted but not
// yet taken by an Accept are closed; exchanges in progress finish on their
// own. It waits for the accept loop to exit.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		err = s.ln.Close()
	})
	<-s.loopDone
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// acceptLoop accepts connections and hands each to one Accept call. It
// retries temporary failures (out of file descriptors) with a short backoff
// and stops for good on any other error.
func (s *Server) acceptLoop() {
	defer close(s.loopDone)
	backoff := 5 * time.Millisecond
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				s.setLoopErr(net.ErrClosed)
				return
			default:
			}
			if transientAcceptError(err) {
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-s.done:
					t.Stop()
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
			s.setLoopErr(err)
			return
		}
		backoff = 5 * time.Millisecond
		select {
		case s.conns <- conn:
		case <-s.done:
			conn.Close()
			s.setLoopErr(net.ErrClosed)
			return
		}
	}
}

// transientAcceptError reports an accept failure that goes away by itself:
// out of descriptors or buffers, or a connection aborted before accept.
func transientAcceptError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Server) setLoopErr(err error) {
	s.mu.Lock()
	s.loopErr = err
	s.mu.Unlock()
}
