package rdmatransport

import (
	"fmt"
	"time"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/rdma"
)

// Options configure New. Zero fields take their defaults. The caller owns
// the Options; New copies them.
type Options struct {
	// Device is where the queue pairs live. The transport does not close
	// it: the caller closes it after Close.
	Device rdma.Device
	// Store is the rendezvous the ranks exchange endpoints through. The
	// transport uses it only inside New.
	Store collective.Store
	// Rank and Size: this rank and the group size.
	Rank, Size int
	// Prefix namespaces the store keys; default "rdmatransport". Ranks of
	// one group must agree on it, groups sharing a store must not.
	Prefix string
	// Name is what Info reports; default "rdma/" + Device.Name().
	Name string
	// Host labels this rank's machine in Info; default the IP address of
	// the device's first GID.
	Host string
	// MTU is this side's largest path MTU; the path uses the smaller of
	// both sides'. Default 1024.
	MTU rdma.MTU
	// EagerMax is the largest message sent eagerly (copied through a
	// slot); larger ones use the rendezvous. Default 16384, at most 1 MiB.
	EagerMax int
	// Slots is the receive slots (credits) per peer, at least 8; default
	// 32. Each side of each connection registers about
	// 2 × Slots × (EagerMax + 40) bytes.
	Slots int
	// MaxWrites bounds the rendezvous WRITEs outstanding per peer; default 16.
	MaxWrites int
	// Timeout is the queue pairs' ACK timeout exponent (4.096 µs × 2^n);
	// default 14 (67 ms), perftest's. RetryCnt is their retry count;
	// default 7. A peer that stops answering is lost after about
	// RetryCnt+1 timeouts.
	Timeout  uint8
	RetryCnt uint8
	// CloseTimeout bounds how long Close waits for its goodbyes to be
	// acknowledged; default 250 ms.
	CloseTimeout time.Duration
	// MRCache is the most registrations of caller buffers kept for reuse
	// by rendezvous transfers; default 64.
	MRCache int
}

const (
	maxEagerMax = 1 << 20
	maxSlots    = 4096
)

func (o *Options) setDefaults() error {
	if o.Device == nil {
		return fmt.Errorf("rdmatransport: no device: %w", collective.ErrInvalidArgument)
	}
	if o.Store == nil {
		return fmt.Errorf("rdmatransport: no store: %w", collective.ErrInvalidArgument)
	}
	if o.Size < 1 || o.Rank < 0 || o.Rank >= o.Size || o.Size > 1<<20 {
		return fmt.Errorf("rdmatransport: rank %d of %d: %w", o.Rank, o.Size, collective.ErrInvalidArgument)
	}
	if len(o.Device.GIDs()) == 0 {
		return fmt.Errorf("rdmatransport: device %s has no GID: %w", o.Device.Name(), collective.ErrInvalidArgument)
	}
	if o.Prefix == "" {
		o.Prefix = "rdmatransport"
	}
	if o.Name == "" {
		o.Name = "rdma/" + o.Device.Name()
	}
	if o.Host == "" {
		o.Host = o.Device.GIDs()[0].Addr().String()
	}
	if len(o.Host) > 255 {
		return fmt.Errorf("rdmatransport: host label of %d bytes (at most 255): %w", len(o.Host), collective.ErrInvalidArgument)
	}
	if o.MTU == 0 {
		o.MTU = rdma.MTU1024
	}
	if o.MTU.Bytes() == 0 {
		return fmt.Errorf("rdmatransport: path mtu %v is not one of 256..4096: %w", o.MTU, collective.ErrInvalidArgument)
	}
	if o.EagerMax == 0 {
		o.EagerMax = 16384
	}
	if o.EagerMax < 0 || o.EagerMax > maxEagerMax {
		return fmt.Errorf("rdmatransport: eager limit %d outside 0..%d: %w", o.EagerMax, maxEagerMax, collective.ErrInvalidArgument)
	}
	if o.Slots == 0 {
		o.Slots = 32
	}
	if o.Slots < 8 || o.Slots > maxSlots {
		return fmt.Errorf("rdmatransport: %d slots outside 8..%d: %w", o.Slots, maxSlots, collective.ErrInvalidArgument)
	}
	if o.MaxWrites <= 0 {
		o.MaxWrites = 16
	}
	if o.Timeout == 0 {
		o.Timeout = 14
	}
	if o.Timeout > 31 {
		return fmt.Errorf("rdmatransport: ack timeout exponent %d above 31: %w", o.Timeout, collective.ErrInvalidArgument)
	}
	if o.RetryCnt == 0 {
		o.RetryCnt = 7
	}
	if o.RetryCnt > 7 {
		return fmt.Errorf("rdmatransport: retry count %d above 7: %w", o.RetryCnt, collective.ErrInvalidArgument)
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = 250 * time.Millisecond
	}
	if o.MRCache <= 0 {
		o.MRCache = 64
	}
	return nil
}
