package route

import (
	"errors"
	"fmt"

	"github.com/opennetworks/onetdp/collective"
)

// Options configure New. The caller owns the struct; New only reads it.
type Options struct {
	// Local carries messages to the ranks on this host; Remote to the
	// others. Both must have this rank and the same group size. The route
	// transport owns both: Close closes them.
	Local, Remote collective.Transport
	// IsLocal reports whether a peer goes over Local. It must give every
	// rank's same answer for a pair (both ends use one transport) and be
	// safe for concurrent use. Default: a peer is local when Local's and
	// Remote's Describer host lists agree that it shares this rank's host,
	// or (without host lists) when Local has a method IsLocal(int) bool
	// saying so.
	IsLocal func(peer int) bool
}

// Transport sends over Local or Remote by peer. Safe for concurrent use.
type Transport struct {
	local, remote collective.Transport
	isLocal       []bool
}

var (
	_ collective.Transport = (*Transport)(nil)
	_ collective.Describer = (*Transport)(nil)
)

// New joins o.Local and o.Remote. The peer split is computed once here.
func New(o Options) (*Transport, error) {
	if o.Local == nil || o.Remote == nil {
		return nil, fmt.Errorf("route: new: local and remote transports are required: %w", collective.ErrInvalidArgument)
	}
	rank, size := o.Remote.Rank(), o.Remote.Size()
	if o.Local.Rank() != rank || o.Local.Size() != size {
		return nil, fmt.Errorf("route: new: local transport is rank %d of %d, remote rank %d of %d: %w",
			o.Local.Rank(), o.Local.Size(), rank, size, collective.ErrInvalidArgument)
	}
	is := o.IsLocal
	if is == nil {
		is = defaultIsLocal(o.Local, o.Remote)
		if is == nil {
			return nil, fmt.Errorf("route: new: no IsLocal and the local transport cannot say which ranks it reaches: %w", collective.ErrInvalidArgument)
		}
	}
	t := &Transport{local: o.Local, remote: o.Remote, isLocal: make([]bool, size)}
	for p := range size {
		t.isLocal[p] = is(p)
	}
	return t, nil
}

func defaultIsLocal(local, remote collective.Transport) func(int) bool {
	if l, ok := local.(interface{ IsLocal(int) bool }); ok {
		return l.IsLocal
	}
	if d, ok := local.(collective.Describer); ok {
		h := d.Info().Host
		me := local.Rank()
		if len(h) == local.Size() && h[me] != "" {
			return func(p int) bool { return h[p] == h[me] }
		}
	}
	return nil
}

// Rank implements collective.Transport.
func (t *Transport) Rank() int { return t.remote.Rank() }

// Size implements collective.Transport.
func (t *Transport) Size() int { return t.remote.Size() }

// IsLocal reports whether peer is reached through the local transport.
func (t *Transport) IsLocal(peer int) bool {
	return peer >= 0 && peer < len(t.isLocal) && t.isLocal[peer]
}

func (t *Transport) pick(peer int) collective.Transport {
	if t.IsLocal(peer) {
		return t.local
	}
	return t.remote // it reports out-of-range peers
}

// Isend implements collective.Transport.
func (t *Transport) Isend(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	return t.pick(peer).Isend(peer, tag, b)
}

// Irecv implements collective.Transport.
func (t *Transport) Irecv(peer int, tag collective.Tag, b []byte) (collective.Request, error) {
	return t.pick(peer).Irecv(peer, tag, b)
}

// Close implements collective.Transport: it closes both transports.
func (t *Transport) Close() error {
	return errors.Join(t.local.Close(), t.remote.Close())
}

// Info implements collective.Describer: Name "<local>+<remote>" ("shm+tcp"),
// Host from Remote's Info where it names a host, else Local's.
func (t *Transport) Info() collective.TransportInfo {
	var li, ri collective.TransportInfo
	if d, ok := t.local.(collective.Describer); ok {
		li = d.Info()
	}
	if d, ok := t.remote.(collective.Describer); ok {
		ri = d.Info()
	}
	ln, rn := li.Name, ri.Name
	if ln == "" {
		ln = "local"
	}
	if rn == "" {
		rn = "remote"
	}
	info := collective.TransportInfo{Name: ln + "+" + rn}
	n := t.Size()
	if len(ri.Host) != n && len(li.Host) != n {
		return info
	}
	info.Host = make([]string, n)
	for p := range n {
		if len(ri.Host) == n && ri.Host[p] != "" {
			info.Host[p] = ri.Host[p]
		} else if len(li.Host) == n {
			info.Host[p] = li.Host[p]
		}
	}
	return info
}
