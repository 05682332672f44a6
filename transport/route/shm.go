package route

import (
	"context"
	"errors"
	"fmt"

	"github.com/opennetworks/onetdp/collective"
	"github.com/opennetworks/onetdp/transport/shm"
)

// LocalRanks lists the ranks that share t's rank's host according to
// t's Describer (sorted, this rank included), or nil when t cannot say.
func LocalRanks(t collective.Transport) []int {
	d, ok := t.(collective.Describer)
	if !ok {
		return nil
	}
	h := d.Info().Host
	me := t.Rank()
	if len(h) != t.Size() || h[me] == "" {
		return nil
	}
	var local []int
	for r, x := range h {
		if x == h[me] {
			local = append(local, r)
		}
	}
	return local
}

// OverSharedMemory opens a shm transport between the ranks remote says
// share this rank's host (LocalRanks) and routes them over it, the others
// over remote. o's Rank, Size and Local are set from remote; its Store is
// required, its Prefix keeps the shm keys apart from remote's. Every rank
// of the group must call it (ranks alone on their host too). On error
// remote stays open: the caller still owns it.
func OverSharedMemory(ctx context.Context, remote collective.Transport, o shm.Options) (*Transport, error) {
	local := LocalRanks(remote)
	if local == nil {
		return nil, fmt.Errorf("route: shared memory: %T does not say which ranks share a host: %w", remote, collective.ErrNotSupported)
	}
	o.Rank, o.Size, o.Local = remote.Rank(), remote.Size(), local
	l, err := shm.New(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("route: shared memory: %w", err)
	}
	t, err := New(Options{Local: l, Remote: remote, IsLocal: l.IsLocal})
	if err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return t, nil
}
