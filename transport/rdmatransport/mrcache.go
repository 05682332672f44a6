package rdmatransport

import (
	"unsafe"

	"github.com/opennetworks/onetdp/rdma"
)

// mrCache keeps registrations of caller buffers for reuse: collectives send
// from and receive into the same buffers again and again, and registering
// costs a table insert here and a page pinning on a NIC. Entries are keyed
// by (address, length); a registration keeps its buffer alive, so the
// address cannot be reused by another allocation while cached. At most max
// entries are kept; unused ones are evicted least recently used first, and
// when every entry is in use a registration is made uncached and dropped on
// release. Guarded by the transport's lock.
type mrCache struct {
	pd      rdma.PD
	max     int
	entries map[mrKey]*mrEntry
	clock   uint64
}

type mrKey struct {
	addr uintptr
	n    int
}

type mrEntry struct {
	mr   rdma.MR
	refs int
	used uint64
}

const userAccess = rdma.AccessLocalWrite | rdma.AccessRemoteWrite

func newMRCache(pd rdma.PD, max int) *mrCache {
	return &mrCache{pd: pd, max: max, entries: make(map[mrKey]*mrEntry, max)}
}

// get returns a registration covering b (len(b) > 0), referenced once.
func (c *mrCache) get(b []byte) (rdma.MR, error) {
	k := mrKey{uintptr(unsafe.Pointer(unsafe.SliceData(b))), len(b)}
	c.clock++
	if e, ok := c.entries[k]; ok {
		e.refs++
		e.used = c.clock
		return e.mr, nil
	}
	if len(c.entries) >= c.max {
		c.evict()
	}
	mr, err := c.pd.RegisterMR(b, userAccess)
	if err != nil {
		return nil, err
	}
	if len(c.entries) < c.max {
		c.entries[k] = &mrEntry{mr: mr, refs: 1, used: c.clock}
	}
	return mr, nil
}

// put releases a reference taken by get.
func (c *mrCache) put(mr rdma.MR) {
	b := mr.Buf()
	k := mrKey{uintptr(unsafe.Pointer(unsafe.SliceData(b))), len(b)}
	if e, ok := c.entries[k]; ok && e.mr == mr {
		e.refs--
		return
	}
	_ = mr.Deregister()
}

// evict drops the least recently used entry nobody references.
func (c *mrCache) evict() {
	var victim mrKey
	var best *mrEntry
	for k, e := range c.entries {
		if e.refs == 0 && (best == nil || e.used < best.used) {
			victim, best = k, e
		}
	}
	if best != nil {
		delete(c.entries, victim)
		_ = best.mr.Deregister()
	}
}

// close deregisters every cached registration.
func (c *mrCache) close() {
	for k, e := range c.entries {
		_ = e.mr.Deregister()
		delete(c.entries, k)
	}
}
