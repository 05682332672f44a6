package shm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opennetworks/onetdp/collective"
)

// Defaults of Options.
const (
	DefaultDir                = "/dev/shm"
	DefaultPrefix             = "shm/"
	DefaultRingBytes          = 4 << 20
	DefaultTimeout            = 60 * time.Second
	DefaultPeerTimeout        = 5 * time.Second
	DefaultMaxUnexpectedBytes = 64 << 20
)

// heartbeatEvery is how often a transport bumps its heartbeat word in the
// rings it writes, and checks its peers'.
const heartbeatEvery = 100 * time.Millisecond

// Options configure New. The caller owns the struct; New only reads it.
type Options struct {
	// Store is the job's rendezvous store (required).
	Store collective.Store
	// Rank and Size place this process in the whole group.
	Rank, Size int
	// Local lists the ranks on this host, this rank included (required);
	// every local rank must pass the same set. Isend and Irecv with other
	// ranks fail with collective.ErrNotSupported.
	Local []int
	// Dir holds the ring files while ranks attach (DefaultDir); it must be
	// a file system every local rank can mmap (tmpfs).
	Dir string
	// Prefix namespaces the store keys and file names (DefaultPrefix).
	Prefix string
	// RingBytes is the data size of each ring, a power of two of at least
	// 4096 (DefaultRingBytes). Messages larger than it stream through.
	RingBytes int
	// HostID names this host in Info().Host (default: the host name).
	HostID string
	// Timeout bounds New, on top of ctx (DefaultTimeout).
	Timeout time.Duration
	// PeerTimeout: a peer whose heartbeat did not move for this long is
	// lost (it died without closing). DefaultPeerTimeout.
	PeerTimeout time.Duration
	// MaxUnexpectedBytes bounds the bytes per peer buffered for messages
	// that arrived before their receive (DefaultMaxUnexpectedBytes);
	// beyond it the message waits in the ring (backpressure).
	MaxUnexpectedBytes int
}

// Transport is a collective.Transport between the ranks of one host over
// shared-memory rings. Safe for concurrent use.
type Transport struct {
	rank, size int
	local      []int
	host       string
	peers      []*peer // by rank; nil for non-local ranks
	in, out    []*ring

	closed atomic.Bool
	// mapped is read-held by inline writers while they touch the rings
	// and write-held by Close while it unmaps them.
	mapped sync.RWMutex
	stopHB chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

var (
	_ collective.Transport = (*Transport)(nil)
	_ collective.Describer = (*Transport)(nil)
)

// New maps the rings to and from every local rank and returns the
// transport; every local rank must call it with the same Store, Size,
// Local, Dir, Prefix and RingBytes. It returns once every local rank has
// attached (and every ring file is unlinked), or fails
// (collective.ErrTimeout after Timeout).
func New(ctx context.Context, o Options) (*Transport, error) {
	if o.Store == nil || o.Size < 1 || o.Rank < 0 || o.Rank >= o.Size {
		return nil, fmt.Errorf("shm: new: rank %d of %d (store set: %v): %w", o.Rank, o.Size, o.Store != nil, collective.ErrInvalidArgument)
	}
	local := slices.Clone(o.Local)
	slices.Sort(local)
	local = slices.Compact(local)
	if len(local) != len(o.Local) || len(local) == 0 || local[0] < 0 || local[len(local)-1] >= o.Size || !slices.Contains(local, o.Rank) {
		return nil, fmt.Errorf("shm: new: rank %d: local ranks %v must be distinct ranks of %d including this one: %w",
			o.Rank, o.Local, o.Size, collective.ErrInvalidArgument)
	}
	o.Local = local
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.RingBytes == 0 {
		o.RingBytes = DefaultRingBytes
	}
	if o.RingBytes < 4096 || o.RingBytes&(o.RingBytes-1) != 0 {
		return nil, fmt.Errorf("shm: new: ring of %d bytes, want a power of two >= 4096: %w", o.RingBytes, collective.ErrInvalidArgument)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.PeerTimeout <= 0 {
		o.PeerTimeout = DefaultPeerTimeout
	}
	if o.MaxUnexpectedBytes <= 0 {
		o.MaxUnexpectedBytes = DefaultMaxUnexpectedBytes
	}
	if o.HostID == "" {
		o.HostID, _ = os.Hostname()
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	in, out, err := connect(ctx, o)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, collective.ErrTimeout) {
			err = fmt.Errorf("%w: %w", collective.ErrTimeout, err)
		}
		return nil, fmt.Errorf("shm: rank %d of %d: %w", o.Rank, o.Size, err)
	}
	t := &Transport{rank: o.Rank, size: o.Size, local: local, host: o.HostID, in: in, out: out,
		peers: make([]*peer, o.Size), stopHB: make(chan struct{})}
	for _, r := range local {
		t.peers[r] = newPeer(t, r, in[r], out[r], o.MaxUnexpectedBytes)
	}
	for _, r := range local {
		t.peers[r].start()
	}
	t.wg.Add(1)
	go t.heartbeat(o.PeerTimeout)
	return t, nil
}

// Rank implements collective.Transport.
func (t *Transport) Rank() int { return t.rank }

// Size implements collective.Transport.
func (t *Transport) Size() int { return t.size }

// Local returns the ranks this transport reaches (sorted).
func (t *Transport) Local() []int { return slices.Clone(t.local) }

// IsLocal reports whether peer is reachable through this transport.
func (t *Transport) IsLocal(peer int) bool {
	return peer >= 0 && peer < t.size && t.peers[peer] != nil
}

// Info implements collective.Describer: the host of every local rank,
// "" for the others.
func (t *Transport) Info() collective.TransportInfo {
	h := make([]string, t.size)
	for _, r := range t.local {
		h[r] = t.host
	}
	return collective.TransportInfo{Name: "shm", Host: h}
}

func (t *Transport) peer(op string, peer int) (*peer, error) {
	if peer < 0 || peer >= t.size {
		return nil, fmt.Errorf("shm: %s: peer %d of %d: %w", op, peer, t.size, collective.ErrInvalidArgument)
	}
	if t.closed.Load() {
		return nil, fmt.Errorf("shm: %s: %w", op, collective.ErrClosed)
	}
	p := t.peers[peer]
	if p == nil {
		return nil, fmt.Errorf("shm: %s: rank %d is not on this host: %w", op, peer, collective.ErrNotSupported)
	}
	return p, nil
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

// Close implements collective.Transport: it marks every ring closed
// (peers see ErrPeerLost once they drained what was sent), fails pending
// requests with collective.ErrClosed, waits for its goroutines and unmaps
// the rings.
func (t *Transport) Close() error {
	t.once.Do(func() {
		t.closed.Store(true)
		close(t.stopHB)
		for _, r := range t.local {
			atomic.StoreUint64(t.out[r].u64(offProdClosed), 1)
			atomic.StoreUint64(t.in[r].u64(offConsClosed), 1)
			t.out[r].wakeAll()
			t.in[r].wakeAll()
		}
		err := fmt.Errorf("shm: rank %d: %w", t.rank, collective.ErrClosed)
		for _, r := range t.local {
			t.peers[r].fail(err)
		}
		t.wg.Wait()
		t.mapped.Lock()
		unmapAll(t.in, t.out, t.rank)
		t.mapped.Unlock()
	})
	return nil
}

// heartbeat bumps this rank's heartbeat in the rings it writes and fails
// peers whose heartbeat stood still for timeout (a process that died
// without closing its rings).
func (t *Transport) heartbeat(timeout time.Duration) {
	defer t.wg.Done()
	tick := time.NewTicker(heartbeatEvery)
	defer tick.Stop()
	last := make([]uint64, t.size)
	moved := make([]time.Time, t.size)
	now := time.Now()
	for _, r := range t.local {
		moved[r] = now
	}
	for {
		select {
		case <-t.stopHB:
			return
		case now = <-tick.C:
		}
		for _, r := range t.local {
			atomic.AddUint64(t.out[r].u64(offProdBeat), 1)
			if r == t.rank {
				continue
			}
			if b := atomic.LoadUint64(t.in[r].u64(offProdBeat)); b != last[r] {
				last[r], moved[r] = b, now
			} else if now.Sub(moved[r]) > timeout {
				p := t.peers[r]
				p.fail(fmt.Errorf("shm: rank %d: rank %d silent for %v: %w", t.rank, r, now.Sub(moved[r]).Round(time.Millisecond), collective.ErrPeerLost))
				t.in[r].wakeAll()
				t.out[r].wakeAll()
			}
		}
	}
}
