package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// Defaults of Options.
const (
	DefaultPrefix             = "tcp/"
	DefaultTimeout            = 60 * time.Second
	DefaultSocketBuffer       = 4 << 20
	DefaultMaxUnexpectedBytes = 64 << 20
)

// Options configure New. The caller owns the struct; New only reads it.
type Options struct {
	// Store is the job's rendezvous store (required).
	Store collective.Store
	// Rank and Size place this process in the group.
	Rank, Size int
	// ListenAddr is where to listen ("host:port", port 0 picks one).
	// Default ":0"; with an unspecified host the advertised address is
	// the first global unicast address of an up, non-loopback interface
	// (127.0.0.1 when there is none). Ignored when Listener is set.
	ListenAddr string
	// Listener, when set, is used instead of listening on ListenAddr; New
	// takes it over and closes it once the mesh is built.
	Listener net.Listener
	// AdvertiseAddr, when set, is the "host:port" peers dial instead of
	// the listener's address.
	AdvertiseAddr string
	// Prefix namespaces the store keys, so that several transports can
	// share one store (DefaultPrefix when empty).
	Prefix string
	// HostID names this rank's machine in Info().Host. Default: the host
	// name and the network namespace inode ("name/netns:4026531840"), so
	// ranks in different lab namespaces count as different hosts.
	HostID string
	// Timeout bounds building the mesh, on top of ctx (DefaultTimeout).
	Timeout time.Duration
	// SocketBuffer sets SO_SNDBUF and SO_RCVBUF (DefaultSocketBuffer;
	// negative leaves the kernel's autotuning alone).
	SocketBuffer int
	// MaxUnexpectedBytes bounds the bytes per peer buffered for messages
	// that arrived before their receive (DefaultMaxUnexpectedBytes).
	MaxUnexpectedBytes int
	// PollIdle bounds how long a goroutine waiting for a receive polls
	// the socket itself without a byte arriving before it parks and
	// leaves the socket to the reader goroutine (ONET_TCP_POLL_US
	// microseconds when set, else DefaultPollIdle, or OneThreadPollIdle
	// where GOMAXPROCS is 1; negative: never poll).
	PollIdle time.Duration
}

// Transport is a collective.Transport over a full mesh of TCP connections.
// Safe for concurrent use.
type Transport struct {
	rank, size int
	hosts      []string
	peers      []*peer // by rank; peers[rank] is the loopback to self

	pollIdle time.Duration // Options.PollIdle
	// polling is set while a waiting receiver polls one of the sockets
	// (peer.poll): one poller per transport.
	polling atomic.Bool

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

// writersWaiting counts the process's writer goroutines parked until a
// socket has room: a poller leaves them the thread (peer.poll). Per
// process, since the netpoller that wakes them is: ranks that share a
// process wait for each other's writers too.
var writersWaiting atomic.Int32

var (
	_ collective.Transport = (*Transport)(nil)
	_ collective.Describer = (*Transport)(nil)
)

// New builds the mesh and returns the transport; every rank of the group
// must call it with the same Store, Size and Prefix. It returns once all
// connections are up, or fails (collective.ErrTimeout after Timeout).
func New(ctx context.Context, o Options) (*Transport, error) {
	if o.Store == nil || o.Size < 1 || o.Rank < 0 || o.Rank >= o.Size {
		return nil, fmt.Errorf("tcp: new: rank %d of %d (store set: %v): %w", o.Rank, o.Size, o.Store != nil, collective.ErrInvalidArgument)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.SocketBuffer == 0 {
		o.SocketBuffer = DefaultSocketBuffer
	}
	if o.MaxUnexpectedBytes <= 0 {
		o.MaxUnexpectedBytes = DefaultMaxUnexpectedBytes
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	t := &Transport{rank: o.Rank, size: o.Size, closed: make(chan struct{}), pollIdle: o.PollIdle}
	if t.pollIdle == 0 {
		t.pollIdle = DefaultPollIdle
		if runtime.GOMAXPROCS(0) == 1 {
			t.pollIdle = OneThreadPollIdle
		}
		if us, err := strconv.Atoi(os.Getenv("ONET_TCP_POLL_US")); err == nil {
			t.pollIdle = time.Duration(us) * time.Microsecond
		}
	}
	conns, hosts, err := connectMesh(ctx, o)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, collective.ErrTimeout) {
			err = fmt.Errorf("%w: %w", collective.ErrTimeout, err)
		}
		return nil, fmt.Errorf("tcp: rank %d of %d: %w", o.Rank, o.Size, err)
	}
	t.hosts = hosts
	t.peers = make([]*peer, o.Size)
	for r := range o.Size {
		t.peers[r] = newPeer(t, r, conns[r], o.MaxUnexpectedBytes)
	}
	for _, p := range t.peers {
		p.start()
	}
	return t, nil
}

// Rank implements collective.Transport.
func (t *Transport) Rank() int { return t.rank }

// Size implements collective.Transport.
func (t *Transport) Size() int { return t.size }

// Info implements collective.Describer.
func (t *Transport) Info() collective.TransportInfo {
	return collective.TransportInfo{Name: "tcp", Host: append([]string(nil), t.hosts...)}
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.closed:
		return true
	default:
		return false
	}
}

func (t *Transport) peer(op string, peer int) (*peer, error) {
	if peer < 0 || peer >= t.size {
		return nil, fmt.Errorf("tcp: %s: peer %d of %d: %w", op, peer, t.size, collective.ErrInvalidArgument)
	}
	if t.isClosed() {
		return nil, fmt.Errorf("tcp: %s: %w", op, collective.ErrClosed)
	}
	return t.peers[peer], nil
}

// Isend implements collective.Transport.
func (t *Transport) Isend(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	p, err := t.peer("isend", peer)
	if err != nil {
		return nil, err
	}
	return p.send(tag, b), nil
}

// Irecv implements collective.Transport.
func (t *Transport) Irecv(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	p, err := t.peer("irecv", peer)
	if err != nil {
		return nil, err
	}
	return p.recv(tag, b), nil
}

// Close implements collective.Transport: pending requests fail with
// collective.ErrClosed, connections close (peers see ErrPeerLost), and it
// waits for the transport's goroutines to end.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		close(t.closed)
		err := fmt.Errorf("tcp: rank %d: %w", t.rank, collective.ErrClosed)
		for _, p := range t.peers {
			p.fail(err)
		}
		t.wg.Wait()
	})
	return nil
}
